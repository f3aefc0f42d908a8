// The Linux interfaces HostSupport needs that Swift's Glibc module leaves out:
// epoll, eventfd and timerfd (their headers are not in the module), and two
// GNU extensions of <pthread.h> (hidden without _GNU_SOURCE). Declarations
// only, no code.
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

int pthread_setname_np(pthread_t thread, const char *name);
int pthread_getattr_np(pthread_t thread, pthread_attr_t *attributes);

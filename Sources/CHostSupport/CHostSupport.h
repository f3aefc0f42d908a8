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

// Disk images: hole punching and zeroing (<linux/falloc.h> has the modes) and
// O_DIRECT, both GNU extensions of <fcntl.h>; glibc's __O_DIRECT is always defined.
#include <fcntl.h>
#include <linux/falloc.h>
int fallocate(int fd, int mode, off_t offset, off_t len);
static const int chost_o_direct = __O_DIRECT;

// virtio-rng's source.
#include <sys/random.h>

// accept4 (a GNU extension): the accepted socket is close-on-exec and non-blocking from the start.
#include <sys/socket.h>
int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

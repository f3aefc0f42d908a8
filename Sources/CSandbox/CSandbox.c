// See CSandbox.h. Everything the SIGSYS handler calls is async-signal-safe:
// it formats its message by hand and writes it with one write(2).
#define _GNU_SOURCE
#include "CSandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <stdlib.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

_Static_assert(sizeof(struct csandbox_instruction) == sizeof(struct sock_filter), "sock_filter layout");

static volatile int handler_mode = CSANDBOX_ENFORCE;

// Initial-exec TLS in the executable: reading it in a signal handler is safe.
static __thread const char *thread_kind = 0;
static __thread char thread_name[16];

int csandbox_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

int csandbox_install(const struct csandbox_instruction *program, unsigned short count) {
    struct sock_fprog fprog = { .len = count, .filter = (struct sock_filter *)program };
    // No SECCOMP_FILTER_FLAG_TSYNC: the filter is this thread's (and its future children's).
    return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0 ? 0 : -errno;
}

void csandbox_set_thread_kind(const char *kind, const char *name) {
    thread_kind = kind;
    size_t i = 0;
    for (; name && name[i] && i < sizeof thread_name - 1; i++) thread_name[i] = name[i];
    thread_name[i] = 0;
}

// The trampoline: a raw syscall at a fixed address (see the filter's log-mode exception).
__asm__(".text\n"
        ".globl csandbox_trampoline\n"
        ".type csandbox_trampoline, @function\n"
        "csandbox_trampoline:\n"
        "    movq %rdi, %rax\n"
        "    movq %rsi, %rdi\n"
        "    movq %rdx, %rsi\n"
        "    movq %rcx, %rdx\n"
        "    movq %r8, %r10\n"
        "    movq %r9, %r8\n"
        "    movq 8(%rsp), %r9\n"
        "    syscall\n"
        ".globl csandbox_trampoline_end\n"
        "csandbox_trampoline_end:\n"
        "    ret\n"
        ".size csandbox_trampoline, .-csandbox_trampoline\n");
extern char csandbox_trampoline_end[];

uint64_t csandbox_trampoline_address(void) { return (uint64_t)(uintptr_t)csandbox_trampoline_end; }

const char *csandbox_syscall_name(long number) {
    return number >= 0 && number < CSANDBOX_SYSCALL_LIMIT ? csandbox_syscall_names[number] : 0;
}

long csandbox_syscall(long number, long a0, long a1, long a2, long a3) { return syscall(number, a0, a1, a2, a3); }

int csandbox_drop_bounding_capabilities(void) {
    for (int capability = 0; capability <= 63; capability++) {
        // EINVAL: past the kernel's last capability.
        if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0 && errno != EINVAL) return -errno;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return -errno;
    return 0;
}

int csandbox_clear_capabilities(void) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int64_t csandbox_effective_capabilities(void) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    return (int64_t)data[0].effective | (int64_t)data[1].effective << 32;
}

int csandbox_thread_has_capabilities(void) {
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    for (int i = 0; i < 2; i++) {
        if (data[i].permitted || data[i].effective || data[i].inheritable) return 1;
    }
    return 0;
}

int csandbox_drop_thread_capabilities(int keep_permitted) {
    int held = csandbox_thread_has_capabilities();
    if (held <= 0) return held;
    // The bounding set first: dropping it takes CAP_SETPCAP, which capset removes.
    int result = csandbox_drop_bounding_capabilities();
    if (result != 0 && result != -EPERM) return result;
    return keep_permitted ? 0 : csandbox_clear_capabilities();
}

long csandbox_thread_id(void) { return syscall(SYS_gettid); }

/// Lists the open descriptors from `first` up, as /proc/self/fd shows them,
/// into `found` (at most `capacity`; the directory's own descriptor left out).
/// Collected first: closing while reading the directory would skip entries.
/// How many, or -errno where /proc cannot be read.
static int csandbox_list_descriptors(int first, int *found, int capacity) {
    DIR *directory = opendir("/proc/self/fd");
    if (!directory) return -errno;
    int own = dirfd(directory);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) && count < capacity) {
        char *end;
        long fd = strtol(entry->d_name, &end, 10);
        if (*end == 0 && end != entry->d_name && fd >= first && fd != own) found[count++] = (int)fd;
    }
    closedir(directory);
    return count;
}

int csandbox_close_from(int first) {
    if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0) return 0;
    if (errno != ENOSYS) return -errno;
    int found[1024];
    int count = csandbox_list_descriptors(first, found, 1024);
    if (count < 0) return count;
    for (int i = 0; i < count; i++) close(found[i]);
    return 0;
}

/// Whether `fd` is a Unix socket whose peer is the process `pid` (for a
/// socketpair, the process that made it).
static int csandbox_is_socket_of(int fd, pid_t pid) {
    struct stat status;
    if (fstat(fd, &status) != 0 || !S_ISSOCK(status.st_mode)) return 0;
    int domain = 0;
    socklen_t length = sizeof(domain);
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) != 0 || domain != AF_UNIX) return 0;
    struct ucred peer;
    length = sizeof(peer);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && peer.pid == pid;
}

int csandbox_close_inherited_keeping_parent_socket(void) {
    pid_t parent = getppid();
    int found[1024];
    int count = csandbox_list_descriptors(3, found, 1024);
    if (count < 0) {
        // No /proc (a launcher's own chroot): ask each number up to the limit.
        count = 0;
        struct rlimit limit;
        long last = getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 65536 ? (long)limit.rlim_cur : 65536;
        for (long fd = 3; fd < last && count < 1024; fd++) {
            if (fcntl((int)fd, F_GETFD) != -1) found[count++] = (int)fd;
        }
    }
    // More than were looked at: nothing is kept (no launcher passes that many).
    if (count == 1024) return csandbox_close_from(3);
    int kept = 0;
    for (int i = 0; i < count; i++) {
        if (csandbox_is_socket_of(found[i], parent)) {
            kept++;
        } else {
            close(found[i]);
        }
    }
    return kept;
}

int csandbox_lower_limit(enum csandbox_limit limit, uint64_t value) {
    int resource = limit == CSANDBOX_LIMIT_CORE ? RLIMIT_CORE : limit == CSANDBOX_LIMIT_OPEN_FILES ? RLIMIT_NOFILE : RLIMIT_NPROC;
    struct rlimit current;
    if (getrlimit(resource, &current) != 0) return -errno;
    if (current.rlim_max != RLIM_INFINITY && current.rlim_max <= value && current.rlim_cur <= value) return 0;
    struct rlimit lowered = { .rlim_cur = value, .rlim_max = value };
    return setrlimit(resource, &lowered) == 0 ? 0 : -errno;
}

int csandbox_switch_user(uint32_t uid, uint32_t gid, const char **step) {
    gid_t groups[1] = { gid };
    *step = "setgroups";
    if (setgroups(1, groups) != 0) return -errno;
    *step = "setresgid";
    if (setresgid(gid, gid, gid) != 0) return -errno;
    *step = "setresuid";
    if (setresuid(uid, uid, uid) != 0) return -errno;
    return 0;
}

uint32_t csandbox_audit_arch(void) { return AUDIT_ARCH_X86_64; }

static size_t append(char *buffer, size_t used, size_t size, const char *text) {
    while (text && *text && used < size) buffer[used++] = *text++;
    return used;
}

static size_t append_number(char *buffer, size_t used, size_t size, long value) {
    char digits[24];
    int count = 0;
    unsigned long magnitude = value < 0 ? (unsigned long)-value : (unsigned long)value;
    do { digits[count++] = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude && count < 23);
    if (value < 0 && used < size) buffer[used++] = '-';
    while (count > 0 && used < size) buffer[used++] = digits[--count];
    return used;
}

static void on_sigsys(int signal, siginfo_t *info, void *context) {
    (void)signal;
    int saved_errno = errno;
    ucontext_t *uc = context;
    long number = info->si_syscall;
    char message[256];
    size_t used = 0, size = sizeof message;
    used = append(message, used, size, "swiftvmm: seccomp: the ");
    used = append(message, used, size, thread_kind ? thread_kind : "unsandboxed");
    used = append(message, used, size, " thread '");
    used = append(message, used, size, thread_name);
    used = append(message, used, size, "' made the forbidden system call ");
    const char *name = number >= 0 && number < CSANDBOX_SYSCALL_LIMIT ? csandbox_syscall_names[number] : 0;
    used = append(message, used, size, name ? name : "unknown");
    used = append(message, used, size, " (");
    used = append_number(message, used, size, number);
    greg_t *r = uc->uc_mcontext.gregs;
    // The argument that tells most: an ioctl's request, an open's path.
    if (number == SYS_ioctl) {
        used = append(message, used, size, ", request ");
        used = append_number(message, used, size, (long)(unsigned int)r[REG_RSI]);
    } else if (number == SYS_openat && r[REG_RSI]) {
        used = append(message, used, size, ", ");
        const char *path = (const char *)r[REG_RSI];
        for (int i = 0; path[i] && i < 96 && used < size; i++) message[used++] = path[i];
    }
    used = append(message, used, size, handler_mode == CSANDBOX_LOG ? "): allowed (--seccomp log)\n" : "): killed with SIGSYS\n");
    (void)!write(STDERR_FILENO, message, used);
    long result = csandbox_trampoline(number, r[REG_RDI], r[REG_RSI], r[REG_RDX], r[REG_R10], r[REG_R8], r[REG_R9]);
    // In enforce mode the call above traps again while SIGSYS is blocked, and
    // the kernel kills the process with SIGSYS: it never returns here.
    r[REG_RAX] = result;
    errno = saved_errno;
}

int csandbox_install_handler(enum csandbox_mode mode) {
    handler_mode = mode;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return sigaction(SIGSYS, &action, 0) == 0 ? 0 : -errno;
}

// Landlock has no glibc wrapper, and older kernel headers lack the newer
// rights: the numbers and layouts are the kernel's ABI, spelled out here.
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

// struct landlock_ruleset_attr, ABI 1's size: the kernel takes a shorter
// struct and treats the fields it lacks (network rights, scopes) as zero.
struct csandbox_ruleset_attr {
    uint64_t handled_access_fs;
};

// struct landlock_path_beneath_attr (packed in the kernel's header).
struct csandbox_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

enum { CSANDBOX_LANDLOCK_RULE_PATH_BENEATH = 1, CSANDBOX_LANDLOCK_CREATE_RULESET_VERSION = 1 };

int csandbox_landlock_abi(void) {
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, CSANDBOX_LANDLOCK_CREATE_RULESET_VERSION);
    return abi >= 0 ? (int)abi : -errno;
}

int csandbox_landlock_create_ruleset(uint64_t handled_access_fs) {
    struct csandbox_ruleset_attr attr = { .handled_access_fs = handled_access_fs };
    long fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    return fd >= 0 ? (int)fd : -errno;
}

int csandbox_open_path(const char *path, int *is_directory) {
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat status;
    if (fstat(fd, &status) != 0) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    *is_directory = S_ISDIR(status.st_mode);
    return fd;
}

int csandbox_landlock_add_path_rule(int ruleset, int parent_fd, uint64_t allowed_access) {
    struct csandbox_path_beneath_attr attr = { .allowed_access = allowed_access, .parent_fd = parent_fd };
    return syscall(SYS_landlock_add_rule, ruleset, CSANDBOX_LANDLOCK_RULE_PATH_BENEATH, &attr, 0) == 0 ? 0 : -errno;
}

int csandbox_landlock_restrict_self(int ruleset) {
    return syscall(SYS_landlock_restrict_self, ruleset, 0) == 0 ? 0 : -errno;
}

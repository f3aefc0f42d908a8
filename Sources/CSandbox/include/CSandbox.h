// seccomp-bpf for swiftvmm's threads: installing a filter program on the
// calling thread, the SIGSYS handler that names the thread and the system
// call, and the one instruction `--seccomp log` lets through. The filter
// programs themselves are built in Swift (the Sandbox module).
#ifndef CSANDBOX_H
#define CSANDBOX_H

#include <stdint.h>

/// One past the highest x86-64 system call number the name table knows.
#define CSANDBOX_SYSCALL_LIMIT 451

/// A classic BPF instruction, laid out as the kernel's `struct sock_filter`.
struct csandbox_instruction {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};

/// What the SIGSYS handler does after it has written its message.
enum csandbox_mode {
    /// Dies of SIGSYS (the forbidden call is made again with SIGSYS blocked,
    /// which makes the kernel kill the process).
    CSANDBOX_ENFORCE = 1,
    /// Makes the call itself from `csandbox_trampoline` (which the filters
    /// allow in this mode only) and returns its result to the caller.
    CSANDBOX_LOG = 2,
};

extern const char *const csandbox_syscall_names[CSANDBOX_SYSCALL_LIMIT];

/// The name of system call `number`, or NULL.
const char *csandbox_syscall_name(long number);

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: 0, or -errno.
int csandbox_set_no_new_privs(void);

/// Installs `program` on the calling thread only (no TSYNC): 0, or -errno.
int csandbox_install(const struct csandbox_instruction *program, unsigned short count);

/// Installs the process's SIGSYS handler for `mode`: 0, or -errno.
int csandbox_install_handler(enum csandbox_mode mode);

/// Names the calling thread in the handler's message (`kind` must be a
/// string that lives forever; `name` is copied, at most 15 bytes).
void csandbox_set_thread_kind(const char *kind, const char *name);

/// The address of the instruction after the `syscall` in `csandbox_trampoline`:
/// what the filter sees as the instruction pointer of a call made there.
uint64_t csandbox_trampoline_address(void);

/// A raw system call, made from the one `syscall` instruction log mode allows.
long csandbox_trampoline(long number, long a0, long a1, long a2, long a3, long a4, long a5);

/// `syscall(number, a0, a1, a2, a3)` through glibc (the test hook's forbidden call).
long csandbox_syscall(long number, long a0, long a1, long a2, long a3);

/// Empties the capability bounding and ambient sets (no exec could regain
/// a capability; needs CAP_SETPCAP): 0, or -errno.
int csandbox_drop_bounding_capabilities(void);

/// Empties the permitted, effective and inheritable sets: 0, or -errno.
int csandbox_clear_capabilities(void);

/// The effective capability set (capget), or -errno.
int64_t csandbox_effective_capabilities(void);

/// Whether the calling thread's permitted, effective, inheritable or ambient
/// set holds anything: 1 or 0 (capget; the ambient set through
/// PR_CAP_AMBIENT_IS_SET would need a call per capability, but an ambient
/// capability is always permitted too), or -errno.
int csandbox_thread_has_capabilities(void);

/// Capabilities are per thread: gives up every capability of the calling
/// thread (bounding set, ambient set, then permitted, effective and
/// inheritable), if it holds any; with `keep_permitted`, the bounding and
/// ambient sets only (a switch of user follows, which glibc has every thread
/// make itself: it needs CAP_SETUID, and clears the permitted and effective
/// sets). 0, or -errno.
int csandbox_drop_thread_capabilities(int keep_permitted);

/// The calling thread's id (gettid).
long csandbox_thread_id(void);

/// Closes every descriptor from `first` up (close_range, or one by one
/// through /proc/self/fd where the kernel lacks it): 0, or -errno.
int csandbox_close_from(int first);

/// Closes every descriptor from 3 up but Unix sockets whose peer is the parent
/// process (a socketpair it made: how a launcher learns that its child ended):
/// how many were kept, or -errno.
int csandbox_close_inherited_keeping_parent_socket(void);

/// The resource limits the sandbox sets.
enum csandbox_limit { CSANDBOX_LIMIT_CORE, CSANDBOX_LIMIT_OPEN_FILES, CSANDBOX_LIMIT_PROCESSES };

/// Lowers `limit` (soft and hard) to `value`, or leaves it if it is lower already: 0, or -errno.
int csandbox_lower_limit(enum csandbox_limit limit, uint64_t value);

/// setgroups({gid}), setresgid(gid), setresuid(uid): 0, or -errno with
/// `*step` naming the call that failed.
int csandbox_switch_user(uint32_t uid, uint32_t gid, const char **step);

/// AUDIT_ARCH_X86_64, what `seccomp_data.arch` holds for a 64-bit call.
uint32_t csandbox_audit_arch(void);

/// The highest Landlock ABI the kernel supports
/// (`landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`), or
/// -errno (ENOSYS: not built in; EOPNOTSUPP: built in but not enabled at boot).
int csandbox_landlock_abi(void);

/// A new Landlock ruleset handling the file-system rights `handled_access_fs`
/// (LANDLOCK_ACCESS_FS_* bits): its descriptor (close-on-exec), or -errno.
int csandbox_landlock_create_ruleset(uint64_t handled_access_fs);

/// Opens `path` with O_PATH (no access to its contents, only a handle for a
/// rule): the descriptor, or -errno. `*is_directory` says whether it is one.
int csandbox_open_path(const char *path, int *is_directory);

/// Adds a path-beneath rule to `ruleset`: `allowed_access` on `parent_fd`
/// (from `csandbox_open_path`) and, for a directory, everything beneath it. 0, or -errno.
int csandbox_landlock_add_path_rule(int ruleset, int parent_fd, uint64_t allowed_access);

/// `landlock_restrict_self(ruleset, 0)`: confines the calling thread (and the
/// threads it starts from now on) to `ruleset`, on top of any domain it is in
/// already. Needs PR_SET_NO_NEW_PRIVS. 0, or -errno.
int csandbox_landlock_restrict_self(int ruleset);

#endif

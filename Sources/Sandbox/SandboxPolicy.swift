import KVM

#if canImport(Glibc)
    import Glibc
#endif

/// Which system calls each kind of thread may make, and why (the README's
/// "Sandbox" section lists the same).
///
/// Everything else traps: `execve`, `ptrace`, `fork`, `mount`, `socket` of
/// any family but `AF_UNIX` (`AF_INET` and `AF_INET6` only in the migration,
/// API and process filters, for migration over TCP; any socket at all outside
/// the process, API, I/O and migration filters), `mmap`/`mprotect` with `PROT_EXEC`, `clone`
/// without `CLONE_THREAD`, another architecture's calls.
public enum SandboxPolicy {
    // Protection and clone flags (the policy reads them in the calls' arguments).
    static let protectionExecute: UInt32 = 0x4  // PROT_EXEC
    static let cloneThread: UInt32 = 0x0001_0000  // CLONE_THREAD

    // ioctl requests other than KVM's (asm-generic/ioctls.h, linux/if_tun.h).
    static let terminalRequests: [UInt32] = [
        0x5401, 0x5402, 0x5403, 0x5404,  // TCGETS, TCSETS, TCSETSW, TCSETSF: raw mode and isatty
        0x5413,  // TIOCGWINSZ
    ]
    static let fileRequests: [UInt32] = [0x541B, 0x5421, 0x5451, 0x5450]  // FIONREAD, FIONBIO, FIOCLEX, FIONCLEX
    static let tapRuntimeRequests: [UInt32] = [0x4004_54d0]  // TUNSETOFFLOAD: the guest's negotiated offloads
    /// TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD, TUNGETIFF: opening a tap.
    static let tapSetupRequests: [UInt32] = [0x4004_54ca, 0x4004_54d8, 0x4004_54d0, 0x8004_54d2]

    /// What every thread needs: the Swift runtime and glibc (memory without
    /// `PROT_EXEC`, futexes, signals, clocks, random numbers, thread exit),
    /// reading and writing the fds it was given.
    static let common: [SyscallRule] = [
        SyscallRule("read"), SyscallRule("write"), SyscallRule("readv"), SyscallRule("writev"),
        SyscallRule("pread64"), SyscallRule("pwrite64"), SyscallRule("preadv"), SyscallRule("pwritev"),
        SyscallRule("close"), SyscallRule("fstat"), SyscallRule("newfstatat"), SyscallRule("statx"), SyscallRule("lseek"),
        SyscallRule("fcntl"),
        SyscallRule("mmap", .noBits(index: 2, mask: protectionExecute)),
        SyscallRule("mprotect", .noBits(index: 2, mask: protectionExecute)),
        SyscallRule("munmap"), SyscallRule("mremap"), SyscallRule("madvise"), SyscallRule("brk"),
        SyscallRule("futex"), SyscallRule("set_robust_list"), SyscallRule("rseq"), SyscallRule("membarrier"),
        SyscallRule("rt_sigprocmask"), SyscallRule("rt_sigreturn"), SyscallRule("rt_sigaction"), SyscallRule("sigaltstack"),
        SyscallRule("clock_gettime"), SyscallRule("clock_getres"), SyscallRule("gettimeofday"), SyscallRule("nanosleep"),
        SyscallRule("clock_nanosleep"),
        SyscallRule("getpid"), SyscallRule("gettid"), SyscallRule("sched_yield"), SyscallRule("sched_getaffinity"),
        SyscallRule("getrandom"),
        SyscallRule("exit"), SyscallRule("exit_group"),
        // tgkill only within this process: pthread_kill kicks a vCPU out of KVM_RUN, raise() aborts.
        SyscallRule("tgkill", .oneOf(index: 0, values: [UInt32(truncatingIfNeeded: getpid())])),
        // Threads only: a clone without CLONE_THREAD (a fork) traps.
        SyscallRule("clone", .allBits(index: 0, mask: cloneThread)),
        // clone3's flags are in memory a filter cannot read: ENOSYS makes glibc use clone.
        SyscallRule("clone3", errno: ENOSYS),
        // pthread_setname_np and pthread_getname_np on the calling thread; a thread emptying
        // its own bounding and ambient capability sets as it starts (both only ever shrink).
        SyscallRule("prctl", .oneOf(index: 0, values: [15, 16, 24, 47])),  // PR_SET_NAME, PR_GET_NAME, PR_CAPBSET_DROP, PR_CAP_AMBIENT
        // Capabilities are per thread: each gives up its own as it starts (a thread started by
        // one that still holds them, an API thread of `serve` without --user, inherits them).
        SyscallRule("capget"), SyscallRule("capset"),
        // A thread installs its own filter on top of the one it inherited (flags 0: no TSYNC, no listener).
        SyscallRule("seccomp", .oneOf(index: 1, values: [0])),
        // A thread confines its own paths as it starts (Landlock), with a ruleset built before any
        // filter (no landlock_create_ruleset or landlock_add_rule); flags 0. A domain only narrows.
        SyscallRule("landlock_restrict_self", .oneOf(index: 1, values: [0])),
        SyscallRule("poll"), SyscallRule("ppoll"), SyscallRule("epoll_wait"), SyscallRule("epoll_pwait"), SyscallRule("epoll_ctl"),
        // `--user`: glibc makes every thread of the process carry out the main thread's
        // setgroups/setresgid/setresuid itself (a signal to each), so threads already running
        // (the virtio I/O loop, the console, the API) must be allowed them. Without
        // CAP_SETUID/CAP_SETGID, which leaving uid 0 takes away, they can only lower privilege.
        SyscallRule("setgroups"), SyscallRule("setresgid"), SyscallRule("setresuid"),
    ]

    static func ioctl(_ requests: [UInt32]...) -> SyscallRule {
        SyscallRule("ioctl", .oneOf(index: 1, values: Array(Set(requests.joined())).sorted()))
    }

    static let unixSocket = SyscallRule("socket", .oneOf(index: 0, values: [1]))  // AF_UNIX
    /// A live migration's stream: a Unix socket or TCP (`PUT /migrate` and
    /// `serve --incoming` with a `tcp:` address).
    static let migrationSocket = SyscallRule("socket", .oneOf(index: 0, values: [1, 2, 10]))  // AF_UNIX, AF_INET, AF_INET6
    static let socketIO: [SyscallRule] = [
        SyscallRule("sendmsg"), SyscallRule("recvmsg"), SyscallRule("sendto"), SyscallRule("recvfrom"),
        SyscallRule("shutdown"), SyscallRule("getsockopt"), SyscallRule("setsockopt"), SyscallRule("getsockname"),
        SyscallRule("getpeername"), SyscallRule("accept4"), SyscallRule("accept"),
    ]
    static let eventFDs: [SyscallRule] = [
        SyscallRule("eventfd2"), SyscallRule("timerfd_create"), SyscallRule("timerfd_settime"), SyscallRule("timerfd_gettime"),
        SyscallRule("epoll_create1"),
    ]
    static let diskIO: [SyscallRule] = [SyscallRule("fsync"), SyscallRule("fdatasync"), SyscallRule("fallocate"), SyscallRule("ftruncate")]
    /// Creating files: snapshots (Ctrl-A s, the API) and building a machine (images, logs, sockets).
    static let fileCreation: [SyscallRule] = [
        SyscallRule("openat"), SyscallRule("open"), SyscallRule("mkdir"), SyscallRule("mkdirat"), SyscallRule("unlink"),
        SyscallRule("unlinkat"), SyscallRule("rename"), SyscallRule("renameat"), SyscallRule("renameat2"), SyscallRule("getdents64"),
        SyscallRule("readlink"), SyscallRule("readlinkat"), SyscallRule("access"), SyscallRule("faccessat"), SyscallRule("faccessat2"),
        SyscallRule("getcwd"), SyscallRule("fstatfs"), SyscallRule("statfs"), SyscallRule("flock"), SyscallRule("fadvise64"),
        SyscallRule("dup"), SyscallRule("dup2"), SyscallRule("dup3"), SyscallRule("pipe2"), SyscallRule("chdir"),
    ]

    /// The rules of `kind`'s filter.
    public static func rules(for kind: ThreadKind) -> [SyscallRule] {
        switch kind {
        case .vcpu:
            // KVM_RUN and the vCPU's state; interrupt lines and irqchip/PIT/clock state through
            // the VM fd; device back ends written from the exit (serial files, block, tap offloads).
            return common + diskIO + socketIO + [
                ioctl(KVMRequests.vcpu, KVMRequests.vmRuntime, tapRuntimeRequests, fileRequests),
                SyscallRule("timerfd_settime"),
            ]
        case .io:
            // The epoll loop and its eventfds and timers; block images, taps, vsock's Unix sockets.
            return common + eventFDs + diskIO + socketIO + [
                ioctl(KVMRequests.vmRuntime, tapRuntimeRequests, fileRequests), unixSocket, SyscallRule("connect"),
            ]
        case .timer:
            return common + [SyscallRule("timerfd_settime"), SyscallRule("timerfd_gettime")]
        case .gdb:
            // Its connection, and the vCPUs' registers, memory translation and debug state.
            return common + socketIO + [ioctl(KVMRequests.vcpu, KVMRequests.vmRuntime, fileRequests)]
        case .console:
            // stdin and the terminal; Ctrl-A s writes a snapshot (files, the VM's and vCPUs' state,
            // the MSR list from /dev/kvm).
            return common + diskIO + fileCreation + [
                ioctl(KVMRequests.system, KVMRequests.vcpu, KVMRequests.vmRuntime, terminalRequests, fileRequests)
            ]
        case .api:
            // SwiftNIO's event loop may start the Dispatch workers that run the API's handlers,
            // which build the machine (images, /dev/kvm): the API threads keep the process filter.
            return rules(for: .process)
        case .migration:
            // Its socket (Unix or TCP), the dirty log and every state getter and setter.
            return common + socketIO + diskIO + [
                ioctl(KVMRequests.vcpu, KVMRequests.vmRuntime, fileRequests),
                migrationSocket, SyscallRule("connect"), SyscallRule("bind"), SyscallRule("listen"),
            ]
        case .process:
            // Every kind's calls (threads inherit this), plus building a machine: /dev/kvm and its
            // VM, images and taps, Unix sockets, resource limits, the user and the root to drop to.
            // TCP sockets too, for a migration started from the API (whose threads keep this
            // filter) or received by `serve --incoming`; the vCPU, I/O, timer, GDB and console
            // filters still refuse them.
            var rules = ThreadKind.allCases.filter { ![.process, .api].contains($0) }.flatMap { self.rules(for: $0) }
            rules.removeAll { $0.name == "ioctl" || $0.name == "socket" }
            return [
                ioctl(
                    KVMRequests.system, KVMRequests.vmSetup, KVMRequests.vmRuntime, KVMRequests.vcpu, tapSetupRequests,
                    terminalRequests, fileRequests),
                migrationSocket,
            ] + rules + fileCreation + [
                SyscallRule("bind"), SyscallRule("listen"), SyscallRule("connect"), SyscallRule("socketpair"),
                SyscallRule("prlimit64"), SyscallRule("getrlimit"), SyscallRule("setrlimit"), SyscallRule("sysinfo"),
                SyscallRule("uname"), SyscallRule("getuid"), SyscallRule("geteuid"), SyscallRule("getgid"), SyscallRule("getegid"),
                SyscallRule("sched_setaffinity"), SyscallRule("getppid"), SyscallRule("umask"), SyscallRule("fchmod"),
                SyscallRule("close_range"),
                // libdispatch's workers (the API's handlers) set their own priority: the calling thread only.
                SyscallRule("setpriority", .oneOf(index: 1, values: [0])),
                // --memory-backing memfd: guest RAM in a memfd (created while the machine is built).
                SyscallRule("memfd_create"),
            ]
        }
    }
}

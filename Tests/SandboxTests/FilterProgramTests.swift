import KVM
import XCTest

@testable import Sandbox

/// The compiled filters, run through a classic-BPF interpreter over
/// `seccomp_data` as the kernel would: what each kind allows and refuses.
final class FilterProgramTests: XCTestCase {
    /// The result of `program` for system call `name` with `arguments` (x86-64 unless `arch` says otherwise).
    private func verdict(
        _ program: FilterProgram, _ name: String, _ arguments: [UInt64] = [], arch: UInt32 = 0xc000_003e, ip: UInt64 = 0x1000
    ) -> UInt32 {
        var data = [UInt8](repeating: 0, count: 64)
        func put(_ value: UInt64, at offset: Int, bytes: Int) {
            for i in 0..<bytes { data[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
        }
        put(UInt64(SystemCalls.number(of: name) ?? 0x4000_0000 + 1), at: 0, bytes: 4)
        put(UInt64(arch), at: 4, bytes: 4)
        put(ip, at: 8, bytes: 8)
        for (index, argument) in arguments.enumerated() { put(argument, at: 16 + 8 * index, bytes: 8) }
        var accumulator: UInt32 = 0
        var pc = 0
        let code = program.instructions
        while pc < code.count {
            let instruction = code[pc]
            switch instruction.code {
            case 0x20:
                let offset = Int(instruction.k)
                accumulator = (0..<4).reduce(0) { $0 | UInt32(data[offset + $1]) << (8 * $1) }
            case 0x15: pc += accumulator == instruction.k ? Int(instruction.jt) : Int(instruction.jf)
            case 0x35: pc += accumulator >= instruction.k ? Int(instruction.jt) : Int(instruction.jf)
            case 0x45: pc += accumulator & instruction.k != 0 ? Int(instruction.jt) : Int(instruction.jf)
            case 0x06: return instruction.k
            default:
                XCTFail("unexpected opcode \(instruction.code)")
                return 0
            }
            pc += 1
        }
        XCTFail("the program fell off its end")
        return 0
    }

    private func program(_ kind: ThreadKind, _ mode: SeccompMode = .enforce) throws -> FilterProgram {
        try FilterProgram(kind: kind, rules: SandboxPolicy.rules(for: kind), mode: mode)
    }

    func testEveryKindCompilesAndRefusesExecPtraceAndFork() throws {
        for kind in ThreadKind.allCases {
            let filter = try program(kind)
            XCTAssertLessThan(filter.count, 4096)
            for forbidden in ["execve", "execveat", "ptrace", "fork", "vfork", "mount", "process_vm_writev", "kexec_load"] {
                XCTAssertEqual(verdict(filter, forbidden), FilterProgram.trap, "\(kind) allows \(forbidden)")
            }
            XCTAssertEqual(verdict(filter, "write", [2, 0, 1]), FilterProgram.allow, "\(kind) refuses write")
            XCTAssertEqual(verdict(filter, "mmap", [0, 4096, 3, 0x22]), FilterProgram.allow, "\(kind): mmap read-write")
            XCTAssertEqual(verdict(filter, "mmap", [0, 4096, 7, 0x22]), FilterProgram.trap, "\(kind): mmap PROT_EXEC")
            XCTAssertEqual(verdict(filter, "mprotect", [0, 4096, 5]), FilterProgram.trap, "\(kind): mprotect PROT_EXEC")
            XCTAssertEqual(verdict(filter, "clone", [0x3d0f00]), FilterProgram.allow, "\(kind): pthread_create's clone")
            XCTAssertEqual(verdict(filter, "clone", [0x1200011]), FilterProgram.trap, "\(kind): fork's clone")
            XCTAssertEqual(verdict(filter, "clone3"), FilterProgram.errnoBase | UInt32(ENOSYS))
            // TCP only where a live migration's stream is made: the migration thread and the API's handlers.
            let tcp: UInt32 = [.migration, .api, .process].contains(kind) ? FilterProgram.allow : FilterProgram.trap
            XCTAssertEqual(verdict(filter, "socket", [2, 1, 0]), tcp, "\(kind): an AF_INET socket")
            XCTAssertEqual(verdict(filter, "socket", [16, 3, 0]), FilterProgram.trap, "\(kind): a netlink socket")
            XCTAssertEqual(verdict(filter, "read", arch: 0x4000_0003), FilterProgram.killProcess, "\(kind): an i386 call")
        }
    }

    /// Threads confine their paths as they start with a ruleset built before
    /// any filter: `landlock_restrict_self` (flags 0) only, in every kind.
    func testEveryKindMayRestrictItselfWithLandlockButNotBuildRulesets() throws {
        for kind in ThreadKind.allCases {
            let filter = try program(kind)
            XCTAssertEqual(verdict(filter, "landlock_restrict_self", [3, 0]), FilterProgram.allow, "\(kind)")
            XCTAssertEqual(verdict(filter, "landlock_restrict_self", [3, 1]), FilterProgram.trap, "\(kind): flags")
            XCTAssertEqual(verdict(filter, "landlock_create_ruleset", [0, 0, 1]), FilterProgram.trap, "\(kind)")
            XCTAssertEqual(verdict(filter, "landlock_add_rule", [3, 1, 0, 0]), FilterProgram.trap, "\(kind)")
        }
    }

    func testVCPUThreadGetsOnlyRuntimeKVMRequests() throws {
        let vcpu = try program(.vcpu)
        let run = UInt64(KVMRequests.vcpu[0])
        XCTAssertEqual(verdict(vcpu, "ioctl", [5, run, 0]), FilterProgram.allow)
        XCTAssertEqual(verdict(vcpu, "ioctl", [5, run | 0xffff_ffff_0000_0000, 0]), FilterProgram.allow, "the kernel reads 32 bits")
        for request in KVMRequests.system + KVMRequests.vmSetup where !KVMRequests.vmRuntime.contains(request) {
            XCTAssertEqual(verdict(vcpu, "ioctl", [5, UInt64(request)]), FilterProgram.trap, "vCPU thread allowed ioctl \(request)")
        }
        XCTAssertEqual(verdict(vcpu, "socket", [1, 1, 0]), FilterProgram.trap)
        XCTAssertEqual(verdict(vcpu, "openat", [0, 0, 0]), FilterProgram.trap)
        XCTAssertEqual(verdict(try program(.process), "ioctl", [5, UInt64(KVMRequests.system[3])]), FilterProgram.allow)
        XCTAssertEqual(verdict(try program(.process), "socket", [1, 1, 0]), FilterProgram.allow)
    }

    func testLogModeAllowsOnlyTheTrampoline() throws {
        let log = try program(.timer, .log)
        XCTAssertEqual(verdict(log, "ptrace"), FilterProgram.trap)
        let trampoline = SandboxTestSupport.trampolineAddress
        XCTAssertEqual(verdict(log, "ptrace", ip: trampoline), FilterProgram.allow)
        XCTAssertEqual(verdict(try program(.timer), "ptrace", ip: trampoline), FilterProgram.trap, "enforce has no exception")
    }

    func testThreadNamesMapToKinds() {
        XCTAssertEqual(ThreadKind(threadName: "vcpu 0"), .vcpu)
        XCTAssertEqual(ThreadKind(threadName: "vcpu 254"), .vcpu)
        XCTAssertEqual(ThreadKind(threadName: "vcpu-deadline"), .timer)
        XCTAssertEqual(ThreadKind(threadName: "halt probe"), .timer)
        XCTAssertEqual(ThreadKind(threadName: "virtio-io"), .io)
        XCTAssertEqual(ThreadKind(threadName: "gdb stub"), .gdb)
        XCTAssertEqual(ThreadKind(threadName: "console-input"), .console)
        XCTAssertEqual(ThreadKind(threadName: "migration"), .migration)
        XCTAssertNil(ThreadKind(threadName: "something else"))
    }

    func testSystemCallTable() {
        XCTAssertEqual(SystemCalls.number(of: "read"), 0)
        XCTAssertEqual(SystemCalls.number(of: "ioctl"), 16)
        XCTAssertEqual(SystemCalls.name(of: 101), "ptrace")
        XCTAssertNil(SystemCalls.number(of: "no_such_call"))
        XCTAssertThrowsError(try FilterProgram(kind: .vcpu, rules: [SyscallRule("no_such_call")], mode: .enforce))
    }
}

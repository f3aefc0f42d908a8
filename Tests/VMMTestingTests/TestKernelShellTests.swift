import SwiftVMM
import Testing
import VMMTesting

/// Linux to a shell on this host (issue 13): the test kernel of
/// scripts/make-test-kernel.sh boots (PVH vmlinux and the busybox
/// initramfs) to its shell once per vCPU count, is saved at the prompt, and
/// each test types at the serial console of a fresh copy. Skipped, with the
/// reason, where the kernel is not built.
///
/// Disabled in the suite: each of its two fixtures costs a boot of about
/// 3 minutes on this host, and `LinuxVirtioDriverTests` (which CI runs as
/// its own step) already boots the same kernel to its shell once and checks
/// it there. Run it by hand with `--filter TestKernelShellTests` after
/// removing the `.disabled` trait. With `acpi=off` the kernel has no
/// power-off method, so `poweroff -f` halts the processor with interrupts
/// disabled.
@Suite(
    .enabled(if: TestKernel.isAvailable, Comment(rawValue: TestKernel.unavailableReason)),
    .disabled(
        "SKIPPED: two more 3-minute boots of the test kernel; LinuxVirtioDriverTests boots it once and covers the shell (see the README)"
    ))
struct TestKernelShellTests {
    /// The guest at its first prompt, booted on first use.
    static let oneCPU = Result { try bootToPrompt(vcpus: 1) }
    static let twoCPUs = Result { try bootToPrompt(vcpus: 2) }

    static func bootToPrompt(vcpus: Int) throws -> TestVMFixture {
        try TestVMFixture(booting: try TestKernel.guest(), memory: 128 << 20, vcpus: vcpus, platform: .pc) { vm in
            // The boot takes about a minute of emulated ring-0 code here.
            try vm.run(untilOutputContains: TestKernel.readyMarker, timeout: .seconds(600))
            try vm.run(untilOutputContains: TestKernel.prompt, timeout: .seconds(60))
        }
    }

    /// Types `command` and returns what the shell printed up to its next prompt.
    static func type(_ command: String, into vm: TestVM) throws -> String {
        let before = vm.serialText.count
        vm.typeSerial(command + "\n")
        try vm.run(untilOutputContains: "\n" + TestKernel.prompt, timeout: .seconds(60))
        return String(vm.serialText.dropFirst(before))
    }

    @Test func unameReportsTheKernelsRelease() throws {
        let release = try TestKernel.release()
        #expect(release.hasPrefix("6.1."))
        try Self.oneCPU.get().withFreshVM { vm in
            let answer = try Self.type("uname -r", into: vm)
            #expect(answer.contains("\n" + release + "\r\n") || answer.contains("\n" + release + "\n"), "\(answer)")
        }
    }

    @Test func arithmeticIsAnswered() throws {
        try Self.oneCPU.get().withFreshVM { vm in
            let answer = try Self.type("echo $((6*7))", into: vm)
            #expect(answer.contains("\n42\r\n") || answer.contains("\n42\n"), "\(answer)")
        }
    }

    @Test func cpuinfoShowsOneProcessor() throws {
        try Self.oneCPU.get().withFreshVM { vm in
            let answer = try Self.type("cat /proc/cpuinfo", into: vm)
            #expect(answer.contains("processor\t: 0"), "\(answer)")
            #expect(!answer.contains("processor\t: 1"), "\(answer)")
            #expect(answer.contains("vendor_id\t:"), "\(answer)")
            #expect(answer.contains("flags\t\t:"), "\(answer)")
        }
    }

    @Test func poweroffEndsTheMachine() throws {
        try Self.oneCPU.get().withFreshVM { vm in
            vm.typeSerial("poweroff -f\n")
            let reason = try vm.runToCompletion(timeout: .seconds(120))
            #expect(reason == .halted(interruptsEnabled: false))
        }
    }

    @Test func twoProcessorsComeUpAndPowerOff() throws {
        let vm = try Self.twoCPUs.get().clone()
        let cpuinfo = try Self.type("cat /proc/cpuinfo", into: vm)
        #expect(cpuinfo.contains("processor\t: 0"), "\(cpuinfo)")
        #expect(cpuinfo.contains("processor\t: 1"), "\(cpuinfo)")
        let answer = try Self.type("echo $((6*7))", into: vm)
        #expect(answer.contains("\n42"), "\(answer)")
        vm.typeSerial("poweroff -f\n")
        #expect(try vm.runToCompletion(timeout: .seconds(120)) == .halted(interruptsEnabled: false))
    }
}

import Devices
import Foundation
import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// Debian's stock kernel, installed by `.ci/run` (package linux-image-amd64).
/// Missing, it is a failure with the reason, not a skip.
func debianKernelPath() throws -> String {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []
    guard let name = names.filter({ $0.hasPrefix("vmlinuz-") }).sorted().last else {
        Issue.record("no /boot/vmlinuz-*: install Debian's linux-image-amd64 (.ci/run does)")
        throw CancellationError()
    }
    return "/boot/" + name
}

@Suite(.serialized) struct LinuxBootTests {
    /// The decompressor of Debian's bzImage runs with our zero page and, asked
    /// by `earlyprintk=serial,ttyS0,115200`, programs COM1 for 115200 baud 8N1
    /// before it starts decompressing: what a host that emulates kernel code
    /// can show within a bounded time.
    @Test func debianBzImageReachesItsDecompressorAndProgramsCOM1() throws {
        let kernel = try GuestFile.read(try debianKernelPath())
        let vm = try TestVM(.linux(kernel: kernel, commandLine: "console=ttyS0 earlyprintk=serial,ttyS0,115200"), memory: 256 << 20)
        // early_serial_init: LCR = 8N1, IER, FCR, MCR, then LCR | DLAB, the
        // divisor bytes, and LCR = 8N1 again to close the latch.
        let openLatch = try vm.run(
            until: ExitPredicate("LCR write opening the divisor latch") { exit in
                if case .ioOut(0x3fb, 1, 1, let data) = exit { return data.value & 0x80 != 0 }
                return false
            }, timeout: .seconds(120))
        #expect(openLatch == .ioOut(port: 0x3fb, size: 1, count: 1, data: IOData(value: 0x83, size: 1)))
        let exit = try vm.run(
            until: ExitPredicate("LCR write of 8N1 with DLAB clear") { exit in
                if case .ioOut(0x3fb, 1, 1, let data) = exit { return data.value == 0x03 }
                return false
            }, timeout: .seconds(60))
        #expect(exit == .ioOut(port: 0x3fb, size: 1, count: 1, data: IOData(value: 0x03, size: 1)))
        try vm.handlePendingExit()  // let COM1 see that write
        #expect(vm.machine.serial.divisor == 1, "115200 baud is divisor 1 of the 1.8432 MHz clock")
        #expect(vm.machine.serial.lineControl == 0x03)
        let rip = try vm.registers().rip
        #expect(rip >= 0x100000, "running the kernel's own code, not ours")
    }
}

import Firmware
import SwiftVMM
import VMMTesting
import XCTest

/// Building and dropping many machines in one process gives every file
/// descriptor and every mapping back. XCTest, for the reason given on
/// `HostileGuestTests`: the counts are the whole process's.
final class ResourceHygieneTests: XCTestCase {
    func testAThousandMachinesBuiltAndTornDownGiveBackEveryFDAndMapping() throws {
        try HostileGuestTests.warmUp()
        let before = ProcessResources.current()
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for index in 0..<1000 {
                let machine = try Machine(MachineConfiguration(guest: .firmware(.realHalt), memorySize: 1 << 20))
                // Every hundredth one runs, so that a machine that has been in KVM_RUN is torn down too.
                if index % 100 == 0 { XCTAssertEqual(try machine.run(timeout: .seconds(20)), .halted(interruptsEnabled: false)) }
            }
        }
        let after = ProcessResources.current()
        print("1000 machines built and torn down in \(elapsed); \(before) -> \(after)")
        XCTAssertEqual(after.fileDescriptors, before.fileDescriptors, "\(before) -> \(after)")
        XCTAssertEqual(after.kvmFileDescriptors, 0)
        XCTAssertEqual(after.kvmMappings, 0)
        XCTAssertLessThanOrEqual(after.mappedBytes, before.mappedBytes + HostileGuestTests.allocatorSlack, "\(before) -> \(after)")
        XCTAssertLessThan(elapsed, .seconds(60))
    }

    /// A guest that does not fit fails after KVM's VM and vCPU exist: the
    /// error path must release them as the normal one does.
    func testMachinesWhoseGuestDoesNotLoadGiveBackEverything() throws {
        try HostileGuestTests.warmUp()
        let before = ProcessResources.current()
        for _ in 0..<100 {
            let guest = MachineConfiguration.Guest.flat(bytes: [0xf4], mode: .real, loadAddress: 2 << 20)  // above 1 MiB of RAM
            XCTAssertThrowsError(try Machine(MachineConfiguration(guest: guest, memorySize: 1 << 20)))
        }
        let after = ProcessResources.current()
        XCTAssertEqual(after.fileDescriptors, before.fileDescriptors, "\(before) -> \(after)")
        XCTAssertLessThanOrEqual(after.mappedBytes, before.mappedBytes + HostileGuestTests.allocatorSlack, "\(before) -> \(after)")
    }
}

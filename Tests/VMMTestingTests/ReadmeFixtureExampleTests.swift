import Firmware
import Testing
import VMMTesting

/// README, "Example 4: one slow boot, a hundred short tests", verbatim.
struct LookupTests {
    // Booted at most once per process, by whichever test comes first. A
    // static holds it (and its pool of VMs) for the whole run.
    static let fixture = Result {
        try TestVMFixture(FirmwareImage.longSlowBoot) { vm in
            _ = try vm.runUntilHypercall(timeout: .seconds(30))  // "ready": the fixture point
        }
    }

    // Reset per test: a VM from the fixture's pool, put back to the fixture
    // point before each use. Swift Testing runs these cases in parallel; each
    // gets a VM no other case is using.
    @Test(arguments: 0..<100) func lookup(input: UInt64) throws {
        try Self.fixture.get().withFreshVM { vm in
            try vm.modifyRegisters { $0.rax = input }  // the answer to "ready"
            #expect(try vm.runToCompletion() == .debugExit(status: 0x42))
            #expect(vm.serialText.hasPrefix("run 01: "))  // output since the fixture point
        }
    }

    // Clone per test: a VM of the test's own, to keep as long as it likes.
    @Test func lookupInAClone() throws {
        let vm = try Self.fixture.get().clone()
        try vm.modifyRegisters { $0.rax = 7 }
        #expect(try vm.runToCompletion() == .debugExit(status: 0x42))
    }
}

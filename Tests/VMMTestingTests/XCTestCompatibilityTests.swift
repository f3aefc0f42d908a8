import Firmware
import VMCore
import VMMTesting
import XCTest

/// The same API from XCTest: errors are thrown, and their descriptions (with
/// the guest's RIP and the last exits) are what XCTest reports.
final class XCTestCompatibilityTests: XCTestCase {
    func testHelloFromXCTest() throws {
        let vm = try TestVM(FirmwareImage.realHello)
        try vm.run(untilOutputContains: "real mode")
        XCTAssertEqual(try vm.runToCompletion(), .debugExit(status: 0))
        XCTAssertEqual(vm.serialText, "Hello from real mode!\n")
    }

    func testATimeoutIsAThrownErrorWithTheGuestsRIP() throws {
        let vm = try TestVM(code: [0xeb, 0xfe])  // jmp .
        XCTAssertThrowsError(try vm.runToCompletion(timeout: .milliseconds(200))) { error in
            let description = String(describing: error)
            XCTAssertTrue(description.contains("timed out after"), description)
            XCTAssertTrue(description.contains("guest RIP 0x7c00"), description)
        }
    }
}

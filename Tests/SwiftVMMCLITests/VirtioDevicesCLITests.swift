import Foundation
import Testing

/// `--net`, `--vsock` and `--balloon` from the command line: the devices are
/// built when the machine is, and a back end that cannot be opened is one
/// line and exit status 64.
@Suite("VirtioDevicesCLI")
struct VirtioDevicesCLITests {
    /// A guest that halts at once.
    static let halt: [UInt8] = [0xf4]

    @Test func aTapThatCannotBeOpenedIsOneLineAndStatus64() throws {
        let guest = try TemporaryFile(Self.halt)
        // `lo` exists and is not a tap (without root: not permitted); either way it cannot be opened.
        let result = try runSwiftVMM(["run", "--net", "tap=lo", guest.path])
        #expect(result.status == 64, "\(result.stderr)")
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains("--net") && firstLine.contains("tap device 'lo'"), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func aVsockSocketThatCannotBeBoundIsOneLineAndStatus64() throws {
        let guest = try TemporaryFile(Self.halt)
        let result = try runSwiftVMM(["run", "--vsock", "cid=5,socket=/nonexistent-swiftvmm-dir/v.sock", guest.path])
        #expect(result.status == 64, "\(result.stderr)")
        let firstLine = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(firstLine.contains("/nonexistent-swiftvmm-dir/v.sock") && firstLine.contains("bind failed"), "\(result.stderr)")
    }

    @Test func aMachineWithABalloonAndVsockRuns() throws {
        let guest = try TemporaryFile(Self.halt)
        let socket = (guest.path as NSString).deletingLastPathComponent + "/v.sock"
        let result = try runSwiftVMM(["run", "--timeout", "10s", "--balloon", "--vsock", "cid=7,socket=\(socket)", guest.path])
        #expect(result.status == 0, "\(result.stderr)")
    }
}

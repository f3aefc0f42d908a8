import SwiftVMM

/// A snapshot's state file is input like any other: decoding it (framing,
/// checksum, JSON, consistency) must refuse or succeed, never crash. An input
/// starting with 0 is a whole file as found on disk; any other is framed as a
/// payload with a good checksum first, so that the fuzzer reaches the JSON
/// decoder and the checks behind it instead of stopping at the checksum.
func fuzzSnapshotState(_ bytes: [UInt8]) {
    let file = bytes.first == 0 ? Array(bytes.dropFirst()) : MachineSnapshot.stateFile(framing: Array(bytes.dropFirst()))
    guard let state = try? MachineSnapshot(stateFile: file, path: "fuzz") else { return }
    // What decodes must encode again, and decode to the same machine.
    guard let again = try? state.stateFile(), let decoded = try? MachineSnapshot(stateFile: again, path: "fuzz") else {
        fatalError("a decoded state did not survive encoding again")
    }
    precondition(decoded.hardware == state.hardware && decoded.vcpus.count == state.vcpus.count, "the state changed on the way round")
}

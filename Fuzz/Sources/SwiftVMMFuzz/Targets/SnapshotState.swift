import SwiftVMM

/// A snapshot's state file is input like any other: decoding it (framing,
/// checksum, JSON, consistency) must refuse or succeed, never crash. An input
/// starting with 0 is a whole file as found on disk; any other is framed as a
/// payload with a good checksum first, so that the fuzzer reaches the JSON
/// decoder and the checks behind it instead of stopping at the checksum.
func fuzzSnapshotState(_ bytes: [UInt8]) {
    let file = bytes.first == 0 ? Array(bytes.dropFirst()) : framed(Array(bytes.dropFirst()))
    guard let state = try? MachineSnapshot(stateFile: file, path: "fuzz") else { return }
    // What decodes must encode again, and decode to the same machine.
    guard let again = try? state.stateFile(), let decoded = try? MachineSnapshot(stateFile: again, path: "fuzz") else {
        fatalError("a decoded state did not survive encoding again")
    }
    precondition(decoded.hardware == state.hardware && decoded.vcpus.count == state.vcpus.count, "the state changed on the way round")
}

/// `payload` framed as `SnapshotFile` frames it: magic, version 1, header size 32, length, CRC-32.
private func framed(_ payload: [UInt8]) -> [UInt8] {
    var bytes = Array("SWVMSNAP".utf8)
    func append<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (i * 8))) }
    }
    var crc: UInt32 = 0xffff_ffff
    for byte in payload {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? 0xedb8_8320 ^ (crc >> 1) : crc >> 1 }
    }
    append(UInt32(1))
    append(UInt32(32))
    append(UInt64(payload.count))
    append(crc ^ 0xffff_ffff)
    append(UInt32(0))
    return bytes + payload
}

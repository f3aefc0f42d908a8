import GuestMemory
import Migration
import SwiftVMM
import VMCore

/// The receiving side of a live migration: a destination reads whatever the
/// socket brings. The stream header, each frame's length and checksum, each
/// message's payload, the page batches written into a small guest RAM, and
/// the machine state decoded as a destination would: all must refuse or
/// succeed, never crash or allocate what a length field asks for.
///
/// An input starting with 0 is the stream as it came; any other is a list
/// of (type: 1 byte, length: 2 bytes, payload) framed with good checksums
/// behind a good stream header, so that the fuzzer gets past the checksum
/// to the decoders.
func fuzzMigrationStream(_ bytes: [UInt8]) {
    var stream: [UInt8]
    if bytes.first == 0 {
        stream = Array(bytes.dropFirst())
    } else {
        var input = FuzzInput(Array(bytes.dropFirst()))
        stream = MigrationWire.streamHeader()
        while !input.isEmpty {
            let type = UInt32(input.next(UInt8.self) % 12)
            let length = Int(input.next(UInt16.self))
            stream += MigrationMessage.frame(type: type, payload: input.take(upTo: length))
        }
    }
    // Small RAM with a hole, as the PC layout has one.
    guard let memory = try? GuestMemory(regions: [(GuestAddress(0), 64 << 10), (GuestAddress(1 << 20), 64 << 10)]) else { return }
    let view = memory.view
    var reader = MigrationStreamReader(ByteArraySource(stream, chunk: 7))
    guard (try? reader.readStreamHeader()) != nil else { return }
    for _ in 0..<64 {
        guard let message = try? reader.next() else { return }
        switch message {
        case .pages(let batch):
            // What decodes encodes to the same batch.
            guard let again = try? PageBatch(decoding: batch.encoded()[...]), again == batch else {
                fatalError("a decoded page batch did not survive encoding again")
            }
            try? batch.forEachRun { run, data throws(GuestMemoryError) in
                if let data {
                    try view.write(data, at: GuestAddress(run.address))
                } else {
                    try view.releasePages(at: GuestAddress(run.address), count: UInt64(run.pageCount))
                }
            }
        case .state(let state):
            _ = try? MachineSnapshot(stateFile: state, path: "fuzz")
        case .hello(let hello):
            _ = hello.memorySize
        default:
            break
        }
    }
}

import Migration
import Testing
import VMCore

/// The wire format on its own: what is encoded decodes to the same message,
/// and every kind of damage is a typed error.
@Suite struct MigrationWireTests {
    func stream(_ messages: [MigrationMessage], version: UInt32 = MigrationWire.version) -> [UInt8] {
        MigrationWire.streamHeader(version: version) + messages.flatMap { $0.frame() }
    }

    func read(_ bytes: [UInt8], chunk: Int = .max) throws(MigrationWireError) -> [MigrationMessage] {
        var reader = MigrationStreamReader(ByteArraySource(bytes, chunk: chunk))
        _ = try reader.readStreamHeader()
        var messages: [MigrationMessage] = []
        while true {
            do { messages.append(try reader.next()) } catch {
                if error == .endOfStream { return messages }
                throw error
            }
        }
    }

    func sampleBatch() -> PageBatch {
        var batch = PageBatch()
        batch.appendZero(address: 0, count: 16)
        batch.appendPage(address: 0x10000) { bytes in
            bytes.append(contentsOf: (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7) })
            return true
        }
        batch.appendPage(address: 0x11000) { bytes in
            bytes.append(contentsOf: repeatElement(0xAB, count: 4096))
            return true
        }
        batch.appendPage(address: 0x12000) { _ in false }
        return batch
    }

    @Test func everyMessageSurvivesTheRoundTrip() throws {
        let hello = MigrationHello(
            cpuDigest: "cpuid-crc32:1:2", memoryRegions: [.init(base: 0, size: 64 << 20)], vcpuCount: 2, memoryHandover: false)
        let messages: [MigrationMessage] = [
            .hello(hello), .pages(sampleBatch()), .endOfRound(3), .state(Array("{}".utf8)), .complete, .loaded, .commit, .running,
            .error("no room"), .memoryHandover(size: 1 << 30),
        ]
        #expect(try read(stream(messages)) == messages)
        // Split into 1-byte and 1000-byte reads too.
        #expect(try read(stream(messages), chunk: 1) == messages)
        #expect(try read(stream(messages), chunk: 1000) == messages)
    }

    @Test func adjacentPagesJoinIntoRuns() {
        let batch = sampleBatch()
        #expect(batch.runs.count == 3)
        #expect(batch.runs[1] == PageBatch.Run(address: 0x10000, pageCount: 2, hasData: true))
        #expect(batch.dataPages == 2)
        #expect(batch.pageCount == 19)
    }

    @Test func aFlippedBitIsAChecksumError() throws {
        var bytes = stream([.pages(sampleBatch())])
        bytes[MigrationWire.streamHeaderSize + 12 + 100] ^= 0x10
        #expect {
            try read(bytes)
        } throws: { error in
            if case .checksumMismatch(type: 2, _, _) = error as? MigrationWireError { return true }
            return false
        }
    }

    @Test func aNewerVersionIsRefusedByName() {
        #expect(throws: MigrationWireError.unsupportedVersion(found: 2, supported: 1)) { try read(stream([.complete], version: 2)) }
        #expect(throws: MigrationWireError.badMagic) { try read(Array("SWVMSNAP".utf8) + [UInt8](repeating: 0, count: 8)) }
    }

    @Test func anOversizedLengthIsRefusedBeforeAnythingIsRead() {
        // A state message claiming 4 GiB - 1: refused from the header alone.
        var frame: [UInt8] = [4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]
        frame += [1, 2, 3]
        #expect(throws: MigrationWireError.payloadTooLarge(type: 4, length: .max, limit: MigrationWire.maximumStateBytes)) {
            try read(MigrationWire.streamHeader() + frame)
        }
        #expect(throws: MigrationWireError.unknownMessageType(77)) {
            try read(MigrationWire.streamHeader() + MigrationMessage.frame(type: 77, payload: []))
        }
    }

    @Test func aStreamCutInsideAMessageIsTruncated() {
        let bytes = stream([.pages(sampleBatch())])
        #expect(throws: MigrationWireError.truncated(expected: bytes.count - 16 - 12, found: 100)) {
            try read(Array(bytes.prefix(16 + 12 + 100)))
        }
    }

    @Test func hostileBatchesAreMalformed() {
        func batch(_ runs: [(UInt64, UInt32, UInt32)], data: Int = 0) -> [UInt8] {
            var payload: [UInt8] = []
            func append<T: FixedWidthInteger>(_ value: T) {
                for i in 0..<MemoryLayout<T>.size { payload.append(UInt8(truncatingIfNeeded: value >> (i * 8))) }
            }
            append(UInt32(runs.count))
            append(UInt32(0))
            for (address, count, kind) in runs {
                append(address)
                append(count)
                append(kind)
            }
            payload += [UInt8](repeating: 1, count: data)
            return MigrationWire.streamHeader() + MigrationMessage.frame(type: 2, payload: payload)
        }
        let cases: [[UInt8]] = [
            batch([(0x1001, 1, 1)], data: 4096),  // misaligned
            batch([(0, 0, 0)]),  // no pages
            batch([(0, 1, 7)]),  // unknown kind
            batch([(UInt64.max - 4095, 2, 0)]),  // wraps
            batch([(0, 1, 1)], data: 4095),  // short data
            batch([(0, 257, 1)], data: 257 * 4096),  // too much data
        ]
        for bytes in cases {
            #expect {
                try read(bytes)
            } throws: { error in
                if case .malformed(message: "pages", _) = error as? MigrationWireError { return true }
                return false
            }
        }
    }

    @Test func addressesParse() throws {
        #expect(try MigrationAddress(parsing: "unix:/tmp/x.sock") == .unix(path: "/tmp/x.sock"))
        #expect(try MigrationAddress(parsing: "tcp:127.0.0.1:4444") == .tcp(host: "127.0.0.1", port: 4444))
        #expect(throws: MigrationAddressError.self) { try MigrationAddress(parsing: "tcp:127.0.0.1") }
        #expect(throws: MigrationAddressError.self) { try MigrationAddress(parsing: "udp:x") }
    }

    @Test func theChecksumIsZlibs() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xcbf4_3926)
        let long = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(CRC32.checksum(long) == CRC32.update(CRC32.checksum(long[0..<3333]), with: long[3333...]))
        #expect(CRC32.checksum(long) == CRC32.checksum(AnySequence(long)))
    }
}

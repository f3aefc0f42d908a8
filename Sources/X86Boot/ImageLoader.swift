import GuestMemory
import VMCore

/// Where an image ended up in guest memory.
public struct LoadedImage: Hashable, Sendable, Codable {
    /// The guest-physical address to start executing at.
    public var entry: UInt64
    /// The lowest guest-physical address the image occupies; the initial stack goes just below it.
    public var lowestAddress: UInt64
    /// One past the highest guest-physical address the image occupies.
    public var endAddress: UInt64

    public init(entry: UInt64, lowestAddress: UInt64, endAddress: UInt64) {
        self.entry = entry
        self.lowestAddress = lowestAddress
        self.endAddress = endAddress
    }
}

/// Checks that `[address, address + size)` is in RAM. The VMM's own
/// structures go around the image afterwards (`BootStructures.place`), so any
/// address in RAM is accepted here.
func checkPlacement(
    _ what: String, address: UInt64, size: UInt64, mode: CPUMode, memory: borrowing GuestMemory
) throws(BootError) {
    guard memory.contains(GuestAddress(address), length: size) else {
        throw .imageOutsideRAM(what: what, address: address, size: size, ramSize: memory.size)
    }
}

/// A raw binary: its bytes are copied to the load address and executed from the entry.
public enum FlatImage {
    public static func load(
        _ bytes: [UInt8], at loadAddress: UInt64, entry: UInt64? = nil, mode: CPUMode, into memory: borrowing GuestMemory
    ) throws(BootError) -> LoadedImage {
        guard !bytes.isEmpty else { throw .emptyImage }
        try checkPlacement("the image", address: loadAddress, size: UInt64(bytes.count), mode: mode, memory: memory)
        let entry = entry ?? loadAddress
        guard memory.contains(GuestAddress(entry), length: 1) else { throw .entryOutsideImage(entry: entry) }
        do { try memory.write(bytes, at: GuestAddress(loadAddress)) } catch { throw .memory(error) }
        return LoadedImage(entry: entry, lowestAddress: loadAddress, endAddress: loadAddress + UInt64(bytes.count))
    }
}

/// An ELF64 x86-64 executable, validated and ready to load by its program headers.
public struct ELF64Image: Hashable, Sendable {
    /// One `PT_LOAD` program header.
    public struct LoadSegment: Hashable, Sendable {
        public var fileOffset: UInt64
        public var fileSize: UInt64
        public var memorySize: UInt64
        /// Where the segment goes: its physical address (`p_paddr`), since the guest starts with paging off or identity-mapped.
        public var physicalAddress: UInt64
    }

    public var entry: UInt64
    public var segments: [LoadSegment]
    private var bytes: [UInt8]

    /// The ELF magic, `\x7fELF`.
    public static let magic: [UInt8] = [0x7f, 0x45, 0x4c, 0x46]

    /// Whether `bytes` start with the ELF magic (they may still be an invalid ELF).
    public static func hasMagic(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }

    /// Parses and validates the ELF header and program headers.
    public init(parsing bytes: [UInt8]) throws(BootError) {
        let reader = ByteReader(bytes: bytes)
        guard bytes.count >= 64 else { throw .truncated(what: "the ELF header", needed: 64, available: UInt64(bytes.count)) }
        guard Self.hasMagic(bytes) else {
            throw .invalidField(field: "ELF magic", found: reader.u32(0), expected: "0x464c457f (\\x7fELF)")
        }
        guard bytes[4] == 2 else {
            throw .invalidField(field: "ELF class (e_ident[EI_CLASS])", found: UInt64(bytes[4]), expected: "2 (ELFCLASS64)")
        }
        guard bytes[5] == 1 else {
            throw .invalidField(field: "ELF data encoding (e_ident[EI_DATA])", found: UInt64(bytes[5]), expected: "1 (little-endian)")
        }
        let type = reader.u16(16)
        guard type == 2 else { throw .invalidField(field: "ELF e_type", found: type, expected: "2 (ET_EXEC)") }
        let machine = reader.u16(18)
        guard machine == 62 else { throw .invalidField(field: "ELF e_machine", found: machine, expected: "62 (EM_X86_64)") }
        entry = reader.u64(24)
        let phoff = reader.u64(32)
        let phentsize = reader.u16(54)
        let phnum = reader.u16(56)
        guard phentsize >= 56 else { throw .invalidField(field: "ELF e_phentsize", found: phentsize, expected: "at least 56") }
        guard phnum > 0 else { throw .invalidField(field: "ELF e_phnum", found: 0, expected: "at least one program header") }
        let (tableSize, o1) = phentsize.multipliedReportingOverflow(by: phnum)
        let (tableEnd, o2) = phoff.addingReportingOverflow(tableSize)
        guard !o1, !o2, tableEnd <= UInt64(bytes.count) else {
            throw .truncated(what: "the ELF program header table", needed: o1 || o2 ? .max : tableEnd, available: UInt64(bytes.count))
        }
        var segments: [LoadSegment] = []
        for i in 0..<phnum {
            let header = phoff + i * phentsize
            guard reader.u32(header) == 1 else { continue }  // PT_LOAD
            let segment = LoadSegment(
                fileOffset: reader.u64(header + 8), fileSize: reader.u64(header + 32),
                memorySize: reader.u64(header + 40), physicalAddress: reader.u64(header + 24))
            guard segment.fileSize <= segment.memorySize else {
                throw .invalidField(
                    field: "ELF program header \(i) p_filesz", found: segment.fileSize, expected: "at most p_memsz (\(segment.memorySize))")
            }
            let (fileEnd, overflow) = segment.fileOffset.addingReportingOverflow(segment.fileSize)
            guard !overflow, fileEnd <= UInt64(bytes.count) else {
                throw .truncated(what: "ELF segment \(i)", needed: overflow ? .max : fileEnd, available: UInt64(bytes.count))
            }
            guard segment.physicalAddress.addingReportingOverflow(segment.memorySize).overflow == false else {
                throw .invalidField(
                    field: "ELF program header \(i) p_paddr + p_memsz", found: segment.physicalAddress,
                    expected: "an address range below 2^64")
            }
            if segment.memorySize > 0 { segments.append(segment) }
        }
        guard !segments.isEmpty else {
            throw .invalidField(field: "ELF program headers", found: 0, expected: "at least one PT_LOAD segment")
        }
        let entry = self.entry
        guard segments.contains(where: { entry >= $0.physicalAddress && entry - $0.physicalAddress < $0.memorySize }) else {
            throw .entryOutsideImage(entry: entry)
        }
        self.segments = segments
        self.bytes = bytes
    }

    /// Copies each segment to its physical address and zeroes its `.bss` tail.
    /// Nothing is written unless every segment fits.
    public func load(mode: CPUMode = .long, into memory: borrowing GuestMemory) throws(BootError) -> LoadedImage {
        for (i, segment) in segments.enumerated() {
            try checkPlacement("ELF segment \(i)", address: segment.physicalAddress, size: segment.memorySize, mode: mode, memory: memory)
        }
        do {
            for segment in segments {
                let start = Int(segment.fileOffset)
                try memory.write(bytes[start..<start + Int(segment.fileSize)], at: GuestAddress(segment.physicalAddress))
                try memory.fill(
                    0, count: segment.memorySize - segment.fileSize, at: GuestAddress(segment.physicalAddress + segment.fileSize))
            }
        } catch { throw .memory(error) }
        let lowest = segments.map(\.physicalAddress).min() ?? 0
        let end = segments.map { $0.physicalAddress + $0.memorySize }.max() ?? 0
        return LoadedImage(entry: entry, lowestAddress: lowest, endAddress: end)
    }
}

/// Little-endian reads from an image at offsets already checked to be in range.
/// An offset past the end reads as zero rather than trapping.
struct ByteReader {
    var bytes: [UInt8]

    func u8(_ offset: UInt64) -> UInt64 { offset < UInt64(bytes.count) ? UInt64(bytes[Int(offset)]) : 0 }
    func u16(_ offset: UInt64) -> UInt64 { u8(offset) | u8(offset + 1) << 8 }
    func u32(_ offset: UInt64) -> UInt64 { u16(offset) | u16(offset + 2) << 16 }
    func u64(_ offset: UInt64) -> UInt64 { u32(offset) | u32(offset + 4) << 32 }
}

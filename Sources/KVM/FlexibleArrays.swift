internal import CKVM

/// One CPUID leaf as KVM reports or takes it (`struct kvm_cpuid_entry2`).
public struct CPUIDEntry: Hashable, Sendable {
    public var function: UInt32
    public var index: UInt32
    public var flags: UInt32
    public var eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0)
    {
        self.function = function
        self.index = index
        self.flags = flags
        self.eax = eax
        self.ebx = ebx
        self.ecx = ecx
        self.edx = edx
    }

    static func decode(_ buffer: UnsafeMutablePointer<kvm_cpuid2>) -> [CPUIDEntry] {
        let entries = UnsafeMutableRawPointer(buffer).advanced(by: MemoryLayout<kvm_cpuid2>.size)
            .assumingMemoryBound(to: kvm_cpuid_entry2.self)
        return (0..<Int(buffer.pointee.nent)).map { i in
            let e = entries[i]
            return CPUIDEntry(function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
        }
    }
}

// KVM's variable-length ioctl arguments (a header followed by an array) are
// built here, in scoped buffers that never outlive the call.

/// A zeroed `Header` followed by room for `count` `Entry` values, alive for
/// the duration of `body` only.
func withFlexibleArray<Header, Entry, R, E: Error>(
    _: Header.Type, _: Entry.Type, count: Int,
    _ body: (UnsafeMutablePointer<Header>, UnsafeMutablePointer<Entry>) throws(E) -> R
) throws(E) -> R {
    let size = MemoryLayout<Header>.size + count * MemoryLayout<Entry>.stride
    let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    defer { raw.deallocate() }
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    let entries = (raw + MemoryLayout<Header>.size).assumingMemoryBound(to: Entry.self)
    return try body(raw.assumingMemoryBound(to: Header.self), entries)
}

func withCPUIDBuffer<R, E: Error>(
    capacity: Int, _ body: (UnsafeMutablePointer<kvm_cpuid2>) throws(E) -> R
) throws(E) -> R {
    try withFlexibleArray(kvm_cpuid2.self, kvm_cpuid_entry2.self, count: capacity) { (header, _) throws(E) -> R in
        header.pointee.nent = UInt32(capacity)
        return try body(header)
    }
}

func withCPUIDBuffer<R, E: Error>(
    entries: [CPUIDEntry], _ body: (UnsafeMutablePointer<kvm_cpuid2>) throws(E) -> R
) throws(E) -> R {
    try withCPUIDBuffer(capacity: entries.count) { (header: UnsafeMutablePointer<kvm_cpuid2>) throws(E) -> R in
        let array = UnsafeMutableRawPointer(header).advanced(by: MemoryLayout<kvm_cpuid2>.size)
            .assumingMemoryBound(to: kvm_cpuid_entry2.self)
        for (i, e) in entries.enumerated() {
            array[i].function = e.function
            array[i].index = e.index
            array[i].flags = e.flags
            array[i].eax = e.eax
            array[i].ebx = e.ebx
            array[i].ecx = e.ecx
            array[i].edx = e.edx
        }
        return try body(header)
    }
}

func withMSRBuffer<R, E: Error>(
    _ msrs: [(index: UInt32, value: UInt64)], _ body: (UnsafeMutablePointer<kvm_msrs>, UnsafeMutablePointer<kvm_msr_entry>) throws(E) -> R
) throws(E) -> R {
    try withFlexibleArray(kvm_msrs.self, kvm_msr_entry.self, count: msrs.count) { (header, entries) throws(E) -> R in
        header.pointee.nmsrs = UInt32(msrs.count)
        for (i, msr) in msrs.enumerated() {
            entries[i].index = msr.index
            entries[i].data = msr.value
        }
        return try body(header, entries)
    }
}

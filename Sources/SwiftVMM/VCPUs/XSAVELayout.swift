import KVM

/// What the guest's CPUID leaf 0xD says about XSAVE: whether it offers XSAVES, and
/// where each state component sits in the standard format (which is also
/// the format of KVM's `KVM_GET_XSAVE2` buffer: KVM reports the host's offsets
/// to the guest).
struct XSAVELayout: Hashable, Sendable {
    /// One user state component (2 and up; x87 and SSE live in the legacy region).
    struct Component: Hashable, Sendable {
        /// Its offset in the standard format (CPUID.(0xD, i).EBX) and size (EAX).
        var offset: Int
        var size: Int
        /// In the compacted format, it starts on a 64-byte boundary (ECX bit 1).
        var aligned: Bool
    }

    /// Components 2-62 by number.
    var components: [Int: Component] = [:]
    /// CPUID.(0xD, 1).EAX: bit 0 XSAVEOPT, bit 1 XSAVEC, bit 3 XSAVES/XRSTORS.
    var formFlags: UInt32 = 0

    var hasXSAVES: Bool { formFlags & 8 != 0 }

    /// The legacy region (x87 and SSE) and the XSAVE header, the first 576 bytes.
    static let legacyAndHeaderSize = 576
    static let headerOffset = 512

    init(components: [Int: Component] = [:], formFlags: UInt32 = 0) {
        self.components = components
        self.formFlags = formFlags
    }

    /// The layout the guest's CPUID `entries` describe.
    init(cpuid entries: [CPUIDEntry]) {
        for entry in entries where entry.function == 0xd {
            if entry.index == 1 {
                formFlags = entry.eax
            } else if (2...62).contains(entry.index), entry.eax != 0, entry.ecx & 1 == 0 {
                // ECX bit 0 set: a supervisor component (IA32_XSS), not in XCR0's standard format.
                components[Int(entry.index)] = Component(offset: Int(entry.ebx), size: Int(entry.eax), aligned: entry.ecx & 2 != 0)
            }
        }
    }

    /// Where each component of `features` (bits 2 and up) starts in the
    /// compacted format with XCOMP_BV = `features`: after the header, in
    /// component order, each aligned to 64 bytes where CPUID says so.
    /// `nil` if a component is unknown.
    func compactedOffsets(_ features: UInt64) -> [Int: Int]? {
        var offsets: [Int: Int] = [:]
        var location = Self.legacyAndHeaderSize
        for i in 2..<63 where features & (1 << UInt64(i)) != 0 {
            guard let component = components[i] else { return nil }
            if component.aligned { location = (location + 63) & ~63 }
            offsets[i] = location
            location += component.size
        }
        return offsets
    }

    /// The standard-format offsets of the components of `features` (bits 2 and up), `nil` if one is unknown.
    func standardOffsets(_ features: UInt64) -> [Int: Int]? {
        var offsets: [Int: Int] = [:]
        for i in 2..<63 where features & (1 << UInt64(i)) != 0 {
            guard let component = components[i] else { return nil }
            offsets[i] = component.offset
        }
        return offsets
    }
}

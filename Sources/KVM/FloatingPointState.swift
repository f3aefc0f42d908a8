import VMCore

/// The vCPU's x87/SSE/AVX state: the XSAVE area where the host has XSAVE
/// (it includes AVX and everything else XCR0 enables), otherwise the legacy
/// `kvm_fpu` view, which is all KVM offers there.
public enum FloatingPointState: Codable, Hashable, Sendable {
    /// The raw `kvm_xsave` area, as many bytes as `KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)`
    /// says (4096 unless the host enabled dynamic features such as AMX).
    case xsave([UInt8])
    case fpu(FPUState)
}

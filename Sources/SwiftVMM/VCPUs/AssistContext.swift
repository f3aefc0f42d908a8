import GuestMemory

/// What an assist that touches guest memory or XSAVE state needs besides the
/// vCPU: the guest's RAM and what its CPUID says about XSAVE.
struct AssistContext: Sendable {
    /// Guest RAM, read and written only through its bounds-checked API.
    var memory: GuestMemoryView?
    var xsaveLayout = XSAVELayout()
}

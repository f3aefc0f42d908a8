internal import CKVM

/// A vCPU's multiprocessing state (`KVM_MP_STATE_*`).
public enum MPState: Hashable, Sendable, Codable {
    case runnable, uninitialized, initReceived, halted, sipiReceived
    case other(UInt32)

    init(rawValue: UInt32) {
        switch rawValue {
        case UInt32(KVM_MP_STATE_RUNNABLE): self = .runnable
        case UInt32(KVM_MP_STATE_UNINITIALIZED): self = .uninitialized
        case UInt32(KVM_MP_STATE_INIT_RECEIVED): self = .initReceived
        case UInt32(KVM_MP_STATE_HALTED): self = .halted
        case UInt32(KVM_MP_STATE_SIPI_RECEIVED): self = .sipiReceived
        default: self = .other(rawValue)
        }
    }

    var rawValue: UInt32 {
        switch self {
        case .runnable: return UInt32(KVM_MP_STATE_RUNNABLE)
        case .uninitialized: return UInt32(KVM_MP_STATE_UNINITIALIZED)
        case .initReceived: return UInt32(KVM_MP_STATE_INIT_RECEIVED)
        case .halted: return UInt32(KVM_MP_STATE_HALTED)
        case .sipiReceived: return UInt32(KVM_MP_STATE_SIPI_RECEIVED)
        case .other(let value): return value
        }
    }
}

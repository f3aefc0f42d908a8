internal import CKVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

/// A vCPU's `kvm_run` page: the shared memory through which KVM reports each
/// exit and through which the VMM answers reads.
///
/// The only type that does pointer arithmetic on that mapping. Every offset KVM
/// gives (`io.data_offset`) is checked against the mapping's size before any
/// byte is read or written. Unmaps itself when it ends.
struct RunPage: ~Copyable {
    private let base: UnsafeMutableRawPointer
    private let size: Int

    init(vcpuFD: Int32, size: Int) throws(KVMError) {
        guard size >= MemoryLayout<kvm_run>.size else { throw .failed(.mapRunPage, .invalidArgument) }
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpuFD, 0)
        guard let pointer, pointer != MAP_FAILED else { throw .failed(.mapRunPage, Errno(rawValue: errno)) }
        base = pointer
        self.size = size
    }

    deinit { munmap(base, size) }

    private var run: UnsafeMutablePointer<kvm_run> { base.assumingMemoryBound(to: kvm_run.self) }

    /// Makes the next `KVM_RUN` return at once with `EINTR` (`kvm_run.immediate_exit`).
    func setImmediateExit(_ value: Bool) {
        ckvm_store_immediate_exit(run, value ? 1 : 0)
    }

    /// The page's address, for `VCPUKicker`, which sets `immediate_exit` from another thread.
    var address: UInt { UInt(bitPattern: base) }

    /// The exit KVM just reported, copied out of the page.
    ///
    /// Single accesses (every OUT and MMIO write) are decoded without touching
    /// the heap; string I/O larger than 8 bytes is copied into an array.
    func decodeExit() -> VMExit {
        let run = self.run
        switch Int32(bitPattern: run.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = run.pointee.io
            let length = Int(io.size) * Int(io.count)
            if io.direction == UInt8(KVM_EXIT_IO_IN) {
                return .ioIn(port: io.port, size: io.size, count: io.count)
            }
            guard let start = checkedRange(offset: io.data_offset, length: length) else {
                return .unknown(reason: run.pointee.exit_reason, hardwareReason: 0)
            }
            let data: IOData
            if length <= 8 {
                var value: UInt64 = 0
                for i in 0..<length { value |= UInt64(base.load(fromByteOffset: start + i, as: UInt8.self)) << (UInt64(i) * 8) }
                data = IOData(value: value, size: length)
            } else {
                data = IOData(bytes: UnsafeRawBufferPointer(start: base + start, count: length))
            }
            return .ioOut(port: io.port, size: io.size, count: io.count, data: data)
        case KVM_EXIT_MMIO:
            let mmio = run.pointee.mmio
            let length = min(Int(mmio.len), 8)
            if mmio.is_write == 0 { return .mmioRead(address: GuestAddress(mmio.phys_addr), size: UInt8(length)) }
            let value = withUnsafeBytes(of: mmio.data) { $0.loadUnaligned(as: UInt64.self) }
            return .mmioWrite(address: GuestAddress(mmio.phys_addr), data: IOData(value: UInt64(littleEndian: value), size: length))
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_FAIL_ENTRY:
            let failure = run.pointee.fail_entry
            return .failEntry(hardwareReason: failure.hardware_entry_failure_reason, cpu: failure.cpu)
        case KVM_EXIT_INTERNAL_ERROR:
            let error = run.pointee.internal
            let count = min(Int(error.ndata), 16)
            let data = withUnsafeBytes(of: error.data) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
            return .internalError(suberror: error.suberror, data: data)
        case KVM_EXIT_SYSTEM_EVENT:
            let event = run.pointee.system_event
            let count = min(Int(event.ndata), 16)
            let data = withUnsafeBytes(of: event.data) { Array($0.bindMemory(to: UInt64.self).prefix(count)) }
            return .systemEvent(Self.systemEvent(event.type), flags: data)
        case KVM_EXIT_DEBUG:
            let arch = run.pointee.debug.arch
            return .debug(DebugExitInfo(exception: arch.exception, pc: arch.pc, dr6: arch.dr6, dr7: arch.dr7))
        case KVM_EXIT_INTR:
            return .interrupted
        default:
            return .unknown(reason: run.pointee.exit_reason, hardwareReason: run.pointee.hw.hardware_exit_reason)
        }
    }

    /// Writes the answer to a pending `IN`/`INS` or MMIO read into the page,
    /// where KVM picks it up on the next `KVM_RUN`. Answers to anything else are
    /// ignored; an answer shorter than the read leaves the rest as it was.
    func completeRead(_ data: IOData) {
        let run = self.run
        switch Int32(bitPattern: run.pointee.exit_reason) {
        case KVM_EXIT_IO where run.pointee.io.direction == UInt8(KVM_EXIT_IO_IN):
            let io = run.pointee.io
            let length = min(Int(io.size) * Int(io.count), data.count)
            guard let start = checkedRange(offset: io.data_offset, length: length) else { return }
            if length <= 8 {
                let value = data.value
                for i in 0..<length {
                    base.storeBytes(of: UInt8(truncatingIfNeeded: value >> (UInt64(i) * 8)), toByteOffset: start + i, as: UInt8.self)
                }
            } else {
                let bytes = data.bytes
                bytes.withUnsafeBytes { source in
                    if let from = source.baseAddress { (base + start).copyMemory(from: from, byteCount: length) }
                }
            }
        case KVM_EXIT_MMIO where run.pointee.mmio.is_write == 0:
            var value = data.value.littleEndian
            withUnsafeBytes(of: &value) { source in
                withUnsafeMutableBytes(of: &run.pointee.mmio.data) { $0.copyMemory(from: source) }
            }
        default:
            break
        }
    }

    /// `offset` as an Int if `[offset, offset + length)` lies inside the mapping.
    private func checkedRange(offset: UInt64, length: Int) -> Int? {
        guard length >= 0, offset <= UInt64(size), UInt64(length) <= UInt64(size) - offset else { return nil }
        return Int(offset)
    }

    /// KVM's `KVM_SYSTEM_EVENT_*` number as a `SystemEvent`.
    static func systemEvent(_ type: UInt32) -> SystemEvent {
        switch Int32(bitPattern: type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN: return .shutdown
        case KVM_SYSTEM_EVENT_RESET: return .reset
        case KVM_SYSTEM_EVENT_CRASH: return .crash
        case KVM_SYSTEM_EVENT_WAKEUP: return .wakeup
        case KVM_SYSTEM_EVENT_SUSPEND: return .suspend
        case KVM_SYSTEM_EVENT_SEV_TERM: return .sevTerminate
        default: return .other(type)
        }
    }
}

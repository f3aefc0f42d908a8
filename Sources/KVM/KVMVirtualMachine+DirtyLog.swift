internal import CKVM
import SystemPackage
import VMCore

#if canImport(Glibc)
    import Glibc
#endif

// Dirty-page logging: which guest pages changed since the last harvest, for
// resetting a fixture to a snapshot and for pre-copy live migration.

extension KVMVirtualMachine {
    /// The granule of the dirty bitmap: one bit per 4 KiB page of the slot.
    public static let dirtyPageSize: UInt64 = 4096

    /// Switches dirty logging to manual protection: `dirtyLog(slot:pageCount:)`
    /// only reads the bitmap and pages are write-protected again only when
    /// `clearDirtyLog` says so, so a huge slot is not re-protected all at once.
    /// Where KVM offers it, slots also start with every bit set
    /// (`KVM_DIRTY_LOG_INITIALLY_SET`), which spares write-protecting the whole
    /// slot when logging starts; clear the bitmap once before relying on it.
    ///
    /// Call it before registering the slots it should apply to. Returns whether
    /// the bitmap starts all set. The corresponding ioctl is `KVM_ENABLE_CAP`
    /// with `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`.
    @discardableResult
    public func enableManualDirtyLogProtect() throws(KVMError) -> Bool {
        let capability = Int32(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
        let supported = try check(ckvm_check_extension(fd, Int(capability)), .checkExtension(capability: capability))
        guard supported > 0 else { throw .missingCapability("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2") }
        let wanted = UInt64(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE) | UInt64(KVM_DIRTY_LOG_INITIALLY_SET)
        var enable = kvm_enable_cap()
        enable.cap = UInt32(capability)
        enable.args.0 = UInt64(supported) & wanted
        _ = try check(ckvm_enable_cap(fd, &enable), .enableCapability(capability: capability))
        return enable.args.0 & UInt64(KVM_DIRTY_LOG_INITIALLY_SET) != 0
    }

    /// The dirty bitmap of `slot`: bit `n % 64` of word `n / 64` is set if page
    /// `n` of the slot was written since the last harvest. Without manual
    /// protection this also resets the log; with it, use `clearDirtyLog`.
    ///
    /// `pageCount` must be the slot's size in pages, as registered with
    /// `logDirtyPages`: KVM writes a bitmap that long whatever buffer it gets.
    /// The corresponding ioctl is `KVM_GET_DIRTY_LOG`.
    public func dirtyLog(slot: UInt32, pageCount: Int) throws(KVMError) -> [UInt64] {
        let operation = KVMOperation.getDirtyLog(slot: slot)
        // KVM says ENOENT for a slot that does not log; so do we, before handing it a buffer.
        guard let pages = dirtyLogSlots.withLock({ $0[slot] }) else { throw .failed(operation, .noSuchFileOrDirectory) }
        guard pageCount == pages else {
            throw .stateSizeMismatch(field: "dirty log page count", expected: pages, actual: pageCount, operation: operation)
        }
        var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
        let result = bitmap.withUnsafeMutableBytes { raw in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = raw.baseAddress
            return ckvm_get_dirty_log(fd, &log)
        }
        _ = try check(result, operation)
        return bitmap
    }

    /// Re-arms logging for the pages of `slot` whose bits are set in `bitmap`
    /// (bit 0 of word 0 is `firstPage`), and clears those bits in KVM's log.
    /// Needs `enableManualDirtyLogProtect()`. `firstPage` and `pageCount` must
    /// be multiples of 64, except that the range may end at the slot's end.
    /// The corresponding ioctl is `KVM_CLEAR_DIRTY_LOG`.
    public func clearDirtyLog(slot: UInt32, firstPage: UInt64, pageCount: UInt32, bitmap: [UInt64]) throws(KVMError) {
        let operation = KVMOperation.clearDirtyLog(slot: slot)
        let words = (Int(pageCount) + 63) / 64
        guard bitmap.count >= words else {
            throw .stateSizeMismatch(field: "dirty bitmap words", expected: words, actual: bitmap.count, operation: operation)
        }
        // KVM_CLEAR_DIRTY_LOG takes a non-const pointer, so it gets a copy.
        var copy = bitmap
        let result = copy.withUnsafeMutableBytes { raw in
            var log = kvm_clear_dirty_log()
            log.slot = slot
            log.num_pages = pageCount
            log.first_page = firstPage
            log.dirty_bitmap = raw.baseAddress
            return ckvm_clear_dirty_log(fd, &log)
        }
        _ = try check(result, operation)
    }
}

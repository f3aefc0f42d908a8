import GuestMemory
import KVM

extension KVMVirtualMachine {
    /// Registers every region of `memory` as a memory slot (slot n for
    /// region n), with or without KVM's dirty log. Calling it again on a live
    /// VM changes only the dirty-log flag: the slots are the same.
    func mapRAM(_ memory: borrowing GuestMemory, logDirtyPages: Bool) throws(KVMError) {
        for (slot, mapping) in memory.hostMappings.enumerated() {
            try setUserMemoryRegion(
                slot: UInt32(slot), guestAddress: mapping.guestBase, size: mapping.size, hostAddress: mapping.hostAddress,
                logDirtyPages: logDirtyPages)
        }
    }
}

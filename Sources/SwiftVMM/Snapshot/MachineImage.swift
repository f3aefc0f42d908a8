import GuestMemory
import KVM
import VMCore

/// A machine saved in memory: its state and a sealed copy of its RAM, from
/// which any number of clones start (each with private copy-on-write RAM)
/// and to which a clone can be reset, page by page, in well under a millisecond
/// for a guest that dirtied little.
///
/// What a test fixture is made of: boot a guest once to the point the tests
/// start from, take an image, then give each test a clone or a reset.
public final class MachineImage: Sendable {
    /// The vCPU, VM and device state.
    public let state: MachineSnapshot
    /// Guest RAM, in a sealed memfd.
    public let memory: MemoryImage

    init(state: MachineSnapshot, memory: MemoryImage) {
        self.state = state
        self.memory = memory
    }
}

extension Machine {
    /// Saves the machine in memory. It must be quiescent (paused, or not running).
    public func makeImage() throws(MachineError) -> MachineImage {
        let state = try captureState()
        do { return MachineImage(state: state, memory: try memory.makeImage()) } catch { throw .memory(error) }
    }

    /// A machine continuing from `image`, with private copy-on-write RAM over
    /// the image's and dirty-page tracking on, so that `reset(to:)` can put it
    /// back cheaply.
    public static func clone(_ image: MachineImage, io: MachineIO = MachineIO()) throws(MachineError) -> Machine {
        let memory: GuestMemory
        do { memory = try GuestMemory(cloning: image.memory) } catch { throw .memory(error) }
        let machine = try Machine(
            hardware: image.state.hardware, io: io, memory: memory, contents: .restore(image.state.boot), trackDirtyPages: true)
        try machine.apply(image.state)
        return machine
    }

    /// Puts this machine back to `image`: only the pages written since the
    /// clone (or the last reset) are copied back — those KVM's dirty log
    /// names and those the VMM wrote itself — then the vCPU, VM and device
    /// state. The machine must be a clone of `image` (or have dirty-page
    /// tracking on and RAM of the same layout) and be quiescent.
    @discardableResult
    public func reset(to image: MachineImage) throws(MachineError) -> ResetStatistics {
        guard trackDirtyPages else { throw .dirtyTrackingOff }
        guard lifecycle.isQuiescent else { throw .notQuiescent(operation: "reset the machine") }
        let dirty = try takeDirtyPages()
        do { try memory.resetPages(dirty, from: image.memory) } catch { throw .memory(error) }
        try apply(image.state)
        // Putting the pages back wrote them too; that is not the guest's doing.
        _ = try takeDirtyPages()
        return ResetStatistics(pagesRestored: dirty.reduce(0) { $0 + $1.bitmap.reduce(0) { $0 + $1.nonzeroBitCount } })
    }

    /// The pages written since the last call, per RAM region: KVM's dirty log
    /// (which it clears as it reports) joined with the pages the VMM wrote
    /// through `GuestMemory`, which KVM never sees.
    func takeDirtyPages() throws(MachineError) -> [DirtyPages] {
        let hostWritten = memory.takeHostWrittenPages()
        var pages: [DirtyPages] = []
        for (slot, range) in memory.ranges.enumerated() {
            let pageCount = Int(range.size / GuestMemory.pageSize)
            var bitmap: [UInt64]
            do { bitmap = try vm.dirtyLog(slot: UInt32(slot), pageCount: pageCount) } catch { throw .kvm(error) }
            if slot < hostWritten.count {
                for (i, word) in hostWritten[slot].bitmap.enumerated() where i < bitmap.count { bitmap[i] |= word }
            }
            pages.append(DirtyPages(regionBase: range.base, bitmap: bitmap))
        }
        return pages
    }
}

import VMCore

/// Where the VMM's protected- and long-mode entry structures went for one guest.
public struct BootStructures: Hashable, Sendable, Codable {
    /// The GDT (`CPUSetup.gdtEntries`).
    public var gdt: UInt64
    /// The long-mode page tables (PML4, PDPT, four page directories: 24 KiB); `nil` in protected mode.
    public var pageTables: UInt64?
    /// The initial stack pointer.
    public var stackTop: UInt64

    /// The traditional places: GDT at 0x500, page tables at 0x1000, the stack just below `stackTop`.
    public static func fixed(stackTop: UInt64, pageTables: Bool) -> BootStructures {
        BootStructures(gdt: X86Layout.gdt.rawValue, pageTables: pageTables ? X86Layout.pml4.rawValue : nil, stackTop: stackTop)
    }

    /// The stack a flat or ELF image gets when nothing can go just below it.
    public static let stackSize: UInt64 = 0x1000
    /// The bytes of `CPUSetup.gdtEntries`.
    public static var gdtSize: UInt64 { UInt64(CPUSetup.gdtEntries.count * 8) }

    /// Places the GDT, the page tables (long mode) and a stack around an image
    /// occupying `occupied`, in `available` RAM: each at its traditional
    /// address when free (the stack just below `stackBelow`, usually the
    /// image's lowest address), otherwise in the lowest free memory.
    public static func place(
        mode: CPUMode, occupied: [Range<UInt64>], available: [Range<UInt64>], stackBelow: UInt64
    ) throws(BootError) -> BootStructures {
        var planner = BootMemoryPlanner(available: available, occupied: occupied)
        return try place(mode: mode, planner: &planner, stackBelow: stackBelow, stackSize: stackSize)
    }

    /// As `place(mode:occupied:available:stackBelow:)`, claiming from `planner`.
    public static func place(
        mode: CPUMode, planner: inout BootMemoryPlanner, stackBelow: UInt64, stackSize: UInt64
    ) throws(BootError) -> BootStructures {
        guard let gdt = planner.claim(size: gdtSize, alignment: 8, preferred: X86Layout.gdt.rawValue) else {
            throw .noRoomForBootStructures(what: "the GDT", size: gdtSize)
        }
        var pageTables: UInt64?
        if mode == .long {
            let size = X86Layout.structuresEnd - X86Layout.pml4.rawValue
            guard let tables = planner.claim(size: size, alignment: 0x1000, preferred: X86Layout.pml4.rawValue) else {
                throw .noRoomForBootStructures(what: "the long-mode page tables", size: size)
            }
            pageTables = tables
        }
        let preferredStack = stackBelow & ~0xf >= stackSize ? (stackBelow & ~0xf) - stackSize : nil
        guard let stack = planner.claim(size: stackSize, alignment: 16, preferred: preferredStack) else {
            throw .noRoomForBootStructures(what: "the boot stack", size: stackSize)
        }
        return BootStructures(gdt: gdt, pageTables: pageTables, stackTop: stack + stackSize)
    }
}

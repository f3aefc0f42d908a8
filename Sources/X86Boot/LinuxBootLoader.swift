import GuestMemory
import VMCore

/// Where a Linux kernel and everything handed to it go in guest memory, and
/// where to enter it.
public struct LinuxBootPlan: Hashable, Sendable {
    /// A range of guest memory holding a blob (the initrd).
    public struct Blob: Hashable, Sendable {
        public var address: GuestAddress
        public var size: UInt64

        public init(address: GuestAddress, size: UInt64) {
            self.address = address
            self.size = size
        }
    }

    /// Where the protected-mode kernel is copied (1 MiB).
    public var kernelAddress: GuestAddress
    /// The protected-mode kernel's length in bytes.
    public var kernelSize: UInt64
    /// Where the kernel decompresses itself and runs, before KASLR moves it.
    public var runtimeStart: GuestAddress
    /// `init_size`: the bytes from `runtimeStart` the kernel needs before it reads the memory map.
    public var runtimeSize: UInt64
    /// The 64-bit entry point: `kernelAddress + 0x200`. Enter in long mode with RSI = `zeroPage`.
    public var entry64: GuestAddress
    /// `struct boot_params`.
    public var zeroPage: GuestAddress
    /// The NUL-terminated command line.
    public var commandLine: GuestAddress
    /// The command line's length without its NUL.
    public var commandLineLength: Int
    /// The initrd, if there is one.
    public var initrd: Blob?
    /// An initial stack pointer for the entry (the kernel soon switches to its own).
    public var stackTop: GuestAddress

    public init(
        kernelAddress: GuestAddress, kernelSize: UInt64, runtimeStart: GuestAddress, runtimeSize: UInt64, entry64: GuestAddress,
        zeroPage: GuestAddress, commandLine: GuestAddress, commandLineLength: Int, initrd: Blob?, stackTop: GuestAddress
    ) {
        self.kernelAddress = kernelAddress
        self.kernelSize = kernelSize
        self.runtimeStart = runtimeStart
        self.runtimeSize = runtimeSize
        self.entry64 = entry64
        self.zeroPage = zeroPage
        self.commandLine = commandLine
        self.commandLineLength = commandLineLength
        self.initrd = initrd
        self.stackTop = stackTop
    }
}

/// Loads a bzImage by the 64-bit boot protocol: the protected-mode kernel at
/// 1 MiB, the command line, the initrd as high as the kernel allows, and the
/// zero page. Two steps, as in linux-loader: `plan` decides every address and
/// checks it against the memory map without touching memory; `load` checks
/// guest RAM too, then writes.
///
/// The machine then enters the kernel in 64-bit mode at `entry64` with paging
/// on (identity-mapped), flat segments, interrupts off and RSI = `zeroPage`.
public struct LinuxBootLoader: Sendable {
    /// The image's validated setup header.
    public let header: LinuxSetupHeader
    private let image: [UInt8]

    /// Parses and validates `bzImage`'s setup header.
    public init(bzImage: [UInt8]) throws(BootError) {
        header = try LinuxSetupHeader(parsing: bzImage)
        image = bzImage
    }

    /// Decides where everything goes, without writing anything.
    ///
    /// Throws if the command line is longer than the kernel's `cmdline_size`,
    /// if the kernel or the memory it decompresses into (`init_size` from its
    /// runtime start) is not RAM in `memoryMap`, or if the initrd does not fit
    /// between the kernel's end and the lower of `initrd_addr_max` and 4 GiB.
    public func plan(commandLine: KernelCommandLine, initrdSize: UInt64?, memoryMap: E820Map) throws(BootError) -> LinuxBootPlan {
        try commandLine.check(fitsIn: min(Int(header.commandLineSize), Int(LinuxLayout.commandLineRegionSize) - 1))
        let load = LinuxLayout.kernelLoadAddress.rawValue
        let fixed: [(String, UInt64, UInt64)] = [
            ("the zero page", LinuxLayout.zeroPage.rawValue, LinuxLayout.zeroPageSize),
            ("the boot stack", LinuxLayout.bootStackTop.rawValue & ~0xfff, 0x1000),
            ("the kernel command line", LinuxLayout.commandLine.rawValue, UInt64(commandLine.bytes.count + 1)),
            ("the protected-mode kernel", load, header.kernelSize),
        ]
        for (what, address, size) in fixed where !memoryMap.containsRAM(address: address, size: size) {
            throw .notUsableRAM(what: what, address: address, size: size)
        }
        let runtime = header.runtimeStart(loadAddress: load)
        let runtimeSize = UInt64(header.initSize)
        if runtimeSize > 0, !memoryMap.containsRAM(address: runtime, size: runtimeSize) {
            throw .notUsableRAM(
                what: "the kernel's decompression area (init_size from its runtime start)", address: runtime, size: runtimeSize)
        }

        var initrd: LinuxBootPlan.Blob?
        if let initrdSize {
            guard initrdSize > 0 else { throw .invalidField(field: "initrd size", found: 0, expected: "at least 1 byte") }
            // Above everything the kernel occupies while it boots, below what it can reach.
            let lowest = max(load + header.kernelSize, runtime + runtimeSize)
            let limit = min(UInt64(header.initrdAddressMax) + 1, LinuxLayout.initrdCeiling)
            guard
                let address = memoryMap.highestRAMPlacement(
                    size: initrdSize, alignment: LinuxLayout.initrdAlignment, lowest: lowest, limit: limit)
            else { throw .initrdDoesNotFit(size: initrdSize, lowest: lowest, limit: limit) }
            initrd = LinuxBootPlan.Blob(address: GuestAddress(address), size: initrdSize)
        }

        return LinuxBootPlan(
            kernelAddress: GuestAddress(load), kernelSize: header.kernelSize, runtimeStart: GuestAddress(runtime), runtimeSize: runtimeSize,
            entry64: GuestAddress(load + LinuxLayout.entry64Offset), zeroPage: LinuxLayout.zeroPage,
            commandLine: LinuxLayout.commandLine, commandLineLength: commandLine.bytes.count, initrd: initrd,
            stackTop: LinuxLayout.bootStackTop)
    }

    /// Plans, checks that every range is backed by guest RAM, then writes the
    /// kernel, command line, initrd and zero page. Nothing is written unless everything fits.
    public func load(
        commandLine: KernelCommandLine, initrd: [UInt8]? = nil, memoryMap: E820Map, acpiRSDP: GuestAddress? = nil,
        into memory: borrowing GuestMemory
    ) throws(BootError) -> LinuxBootPlan {
        let plan = try plan(commandLine: commandLine, initrdSize: initrd.map { UInt64($0.count) }, memoryMap: memoryMap)
        var ranges: [(String, GuestAddress, UInt64)] = [
            ("the zero page", plan.zeroPage, LinuxLayout.zeroPageSize),
            ("the kernel command line", plan.commandLine, UInt64(plan.commandLineLength + 1)),
            ("the protected-mode kernel", plan.kernelAddress, plan.kernelSize),
            ("the kernel's decompression area (init_size from its runtime start)", plan.runtimeStart, plan.runtimeSize),
        ]
        if let blob = plan.initrd { ranges.append(("the initrd", blob.address, blob.size)) }
        for (what, address, size) in ranges where !memory.contains(address, length: size) {
            throw .imageOutsideRAM(what: what, address: address.rawValue, size: size, ramSize: memory.size)
        }
        let zeroPage = LinuxZeroPage.encode(header: header, plan: plan, memoryMap: memoryMap, acpiRSDP: acpiRSDP)
        do {
            try memory.write(image[header.kernelRange], at: plan.kernelAddress)
            try memory.write(commandLine.nulTerminated, at: plan.commandLine)
            if let initrd, let blob = plan.initrd { try memory.write(initrd, at: blob.address) }
            try memory.write(zeroPage, at: plan.zeroPage)
        } catch {
            throw .memory(error)
        }
        return plan
    }
}

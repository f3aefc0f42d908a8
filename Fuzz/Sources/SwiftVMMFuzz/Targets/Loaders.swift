import GuestMemory
import SwiftVMM
import SwiftVMMConfig
import VMCore
import X86Boot

/// Guest RAM for the loader targets: small, so that a page-sized kernel or
/// initrd can fit or not depending on the header's numbers. The mapping is
/// reserved, not touched, so a fresh one per input costs little.
private func guestMemory() -> GuestMemory {
    do { return try GuestMemory(size: 32 << 20) } catch { fatalError("fuzz harness: cannot map guest memory: \(error)") }
}

/// The memory map a machine with `memory` hands its guest.
private func memoryMap(_ memory: borrowing GuestMemory) -> E820Map { setUp { try E820Map(guestRAM: memory.ranges) } }

/// The bzImage setup header, the boot plan and the zero-page writer: parse,
/// plan with initrd sizes from nothing to 2^64 - 1, then load for real.
func fuzzBzImage(_ bytes: [UInt8]) {
    guard let loader = try? LinuxBootLoader(bzImage: bytes) else { return }
    let memory = guestMemory()
    let map = memoryMap(memory)
    let commandLine =
        (try? KernelCommandLine("console=ttyS0 panic=-1", capacity: Int(loader.header.commandLineSize))) ?? KernelCommandLine()
    for initrdSize in [nil, 0, 1, 4096, 1 << 24, UInt64.max - 4095, .max] as [UInt64?] {
        _ = try? loader.plan(commandLine: commandLine, initrdSize: initrdSize, memoryMap: map)
    }
    _ = try? loader.load(commandLine: commandLine, memoryMap: map, acpiRSDP: GuestAddress(0xe_0000), into: memory)
    _ = try? loader.load(commandLine: commandLine, initrd: [UInt8](repeating: 0x5a, count: 8192), memoryMap: map, into: memory)
}

/// The ELF64 loader: program headers validated, then loaded in every mode
/// (real mode allows the low addresses the others reserve).
func fuzzELF(_ bytes: [UInt8]) {
    guard let image = try? ELF64Image(parsing: bytes) else { return }
    let memory = guestMemory()
    for mode in [CPUMode.real, .protected, .long] { _ = try? image.load(mode: mode, into: memory) }
}

/// An ELF `vmlinux` with a PVH entry note: the notes, the segments, and the
/// `hvm_start_info` writer.
func fuzzPVH(_ bytes: [UInt8]) {
    guard let image = try? PVHImage(parsing: bytes) else { return }
    let memory = guestMemory()
    let map = memoryMap(memory)
    let commandLine = (try? KernelCommandLine("console=ttyS0")) ?? KernelCommandLine()
    _ = try? image.load(commandLine: commandLine, memoryMap: map, acpiRSDP: GuestAddress(0xe_0000), into: memory)
    _ = try? image.load(commandLine: commandLine, initrd: [UInt8](repeating: 0x5a, count: 8192), memoryMap: map, into: memory)
}

/// What users type for sizes, addresses and durations, and kernel command
/// lines of any bytes: every parser must answer with a value or an error.
func fuzzCommandLineValues(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? CommandLineValue.parseAddress(text)
    _ = try? CommandLineValue.parseSize(text)
    _ = try? CommandLineValue.parseSize(text, pageMultiple: false)
    _ = try? CommandLineValue.parseDuration(text)
    _ = try? KernelCommandLine(text)
    _ = try? KernelCommandLine(text, capacity: bytes.count / 2)
    var line = KernelCommandLine(capacity: 64)
    _ = try? line.append(key: text, value: text)
}

/// The Multiboot header, the ELF32 and address-field loaders and the
/// information-structure writer: the kernel's command line and a module are
/// cut from the input too, so their sizes and bytes vary with it.
func fuzzMultiboot(_ bytes: [UInt8]) {
    guard let kernel = try? MultibootKernel(parsing: bytes) else { return }
    let memory = guestMemory()
    let map = memoryMap(memory)
    var input = FuzzInput(bytes)
    let commandLine = String(decoding: input.take(upTo: Int(input.next(UInt8.self))), as: UTF8.self)
    let module = MultibootModule(bytes: input.take(upTo: Int(input.next(UInt16.self))), commandLine: commandLine)
    _ = try? kernel.load(commandLine: "kernel " + commandLine, memoryMap: map, into: memory)
    _ = try? kernel.load(commandLine: commandLine, modules: [module, module], memoryMap: map, into: memory)
}

/// `--initrd` as a Multiboot module list: QEMU's commas, doubled commas and
/// per-module arguments, in any bytes.
func fuzzModuleList(_ bytes: [UInt8]) {
    _ = try? CommandLineValue.parseModuleList(String(decoding: bytes, as: UTF8.self))
}

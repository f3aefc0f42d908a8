// Build-time tool run by FirmwarePlugin: assembles firmware/<kind>/*.S and
// writes one Swift file with each guest as a `FirmwareImage`.
//
// The folder a guest is in says how it is built and entered:
//   realmode/, demo/     flat binary linked at 0x7c00, entered in real mode
//   protectedmode/       flat binary linked at 0x100000, 32-bit protected mode
//   longmode/            flat binary linked at 0x100000, 64-bit long mode
//   elf/                 ELF64 executable linked at 0x100000, loaded by its headers
//   multiboot/           ELF32 Multiboot kernel linked at 0x100000 (include/multiboot.ld),
//                        started by the Multiboot loader in 32-bit protected mode
// Sources are assembly (.S) or freestanding C (.c; `_start` in section
// `.text.start`). firmware/include/ holds shared macros, headers and linker
// scripts and is never built on its own.
//
// Options: --clang P --lld P --firmware DIR --work DIR --output FILE
//          [--include DIR] [--collection NAME] [--import-firmware yes]
import Foundation

struct Kind {
    var folder: String
    var prefix: String
    var mode: String
    var loadAddress: UInt64
    var elf: Bool
    /// An ELF32 i386 Multiboot kernel rather than a flat binary or an ELF64 executable.
    var multiboot = false
}

let kinds = [
    Kind(folder: "demo", prefix: "", mode: "real", loadAddress: 0x7c00, elf: false),
    Kind(folder: "realmode", prefix: "real", mode: "real", loadAddress: 0x7c00, elf: false),
    Kind(folder: "protectedmode", prefix: "protected", mode: "protected", loadAddress: 0x10_0000, elf: false),
    Kind(folder: "longmode", prefix: "long", mode: "long", loadAddress: 0x10_0000, elf: false),
    Kind(folder: "elf", prefix: "elf", mode: "long", loadAddress: 0x10_0000, elf: true),
    Kind(folder: "bzimage", prefix: "bzImage", mode: "long", loadAddress: 0, elf: false),
    Kind(folder: "multiboot", prefix: "multiboot", mode: "protected", loadAddress: 0x10_0000, elf: true, multiboot: true),
]

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("FirmwareEmbedder: \(message)\n".utf8))
    exit(1)
}

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard flag.hasPrefix("--"), let value = arguments.popFirst() else {
        fail("usage: --clang P --lld P --firmware DIR --work DIR --output FILE")
    }
    options[String(flag.dropFirst(2))] = value
}
guard let clang = options["clang"], let lld = options["lld"], let firmware = options["firmware"],
    let work = options["work"], let output = options["output"]
else { fail("missing option; got \(options.keys.sorted())") }

func run(_ tool: String, _ args: [String]) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = args
    do { try process.run() } catch { fail("cannot run \(tool): \(error)") }
    process.waitUntilExit()
    if process.terminationStatus != 0 {
        fail("\(URL(fileURLWithPath: tool).lastPathComponent) \(args.joined(separator: " ")) exited with \(process.terminationStatus)")
    }
}

/// `triple-fault` -> `TripleFault`, so `longmode/triple-fault.S` becomes `longTripleFault`.
func identifier(prefix: String, file: String) -> String {
    let words = file.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
    let joined = words.enumerated().map { i, word in
        i == 0 && prefix.isEmpty ? word.lowercased() : word.prefix(1).uppercased() + word.dropFirst()
    }.joined()
    return prefix + joined
}

try? FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
let include = options["include"] ?? firmware + "/include"
let collection = options["collection"] ?? "all"
let importFirmware = options["import-firmware"] == "yes"
/// When set, the guests become members of a new enum of this name (a test
/// target's own namespace) instead of an extension of `FirmwareImage`.
let namespace = options["namespace"]
var declarations: [String] = []
var names: [String] = []

/// A linker script for a flat binary at `base`: `.text.start` (where a C guest
/// puts `_start`) comes first so the entry is the first byte, and `.bss` is
/// placed inside the file as zeros, because nothing clears it after a flat load.
func flatLinkerScript(base: UInt64) -> String {
    let path = "\(work)/flat-\(String(base, radix: 16)).ld"
    let script = """
        ENTRY(_start)
        SECTIONS {
            . = 0x\(String(base, radix: 16));
            .text : { *(.text.start) *(.text .text.*) }
            .rodata : { *(.rodata .rodata.*) }
            .data : { *(.data .data.*) *(.bss .bss.*) *(COMMON) }
            /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame*) }
        }
        """
    do { try script.write(toFile: path, atomically: true, encoding: .utf8) } catch { fail("cannot write \(path): \(error)") }
    return path
}

for kind in kinds {
    let folder = firmware + "/" + kind.folder
    let sources = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        .filter { $0.hasSuffix(".S") || $0.hasSuffix(".c") }.sorted()
    for source in sources {
        let isC = source.hasSuffix(".c")
        let stem = String(source.dropLast(2))
        let object = "\(work)/\(kind.folder)-\(stem)\(isC ? "-c" : "").o"
        let image = "\(work)/\(kind.folder)-\(stem).\(kind.elf ? "elf" : "bin")"
        // Protected-mode C is compiled for i386; everything else (assembly for
        // any mode, which says .code16/.code32 itself, and 64-bit C) as x86-64.
        // A Multiboot kernel is an ELF32 file, so its assembly is i386 too.
        let target = (isC && kind.mode == "protected") || kind.multiboot ? "i386-unknown-none-elf" : "x86_64-unknown-none-elf"
        // __FILE__ (in a guest's assertions) names the source under the
        // guests' folder, `longmode/boot.S`, not the build machine's path.
        var compile = [
            "-c", "-target", target, "-nostdinc", "-I", include, "-fmacro-prefix-map=\(firmware)/=", "-o", object, folder + "/" + source,
        ]
        if isC {
            compile += [
                "-ffreestanding", "-fno-pic", "-fno-stack-protector", "-fno-builtin", "-mno-red-zone",
                "-fno-asynchronous-unwind-tables", "-Os", "-std=c11", "-Wall", "-Werror",
            ]
            // 32-bit guests start with CR4.OSFXSR clear: SSE would fault, and the x87 is untouched.
            // 64-bit ones may use SSE, but where ring 0 is emulated (PVM) KVM's
            // instruction emulator does not know it: no C guest uses it.
            compile += ["-mno-sse", "-mno-mmx", "-mno-80387"]
        }
        run(clang, compile)
        let script =
            kind.multiboot ? include + "/multiboot.ld" : kind.elf ? include + "/elf.ld" : flatLinkerScript(base: kind.loadAddress)
        var linkArgs = ["-nostdlib", "-static", "-T", script, "-o", image, object]
        if target.hasPrefix("i386") { linkArgs += ["-m", "elf_i386"] }
        // A flat binary has no symbol table: link the same objects once more
        // as an ELF file, only to read its symbols.
        let symbolFile = kind.elf ? image : "\(work)/\(kind.folder)-\(stem).symbols.elf"
        if !kind.elf {
            var elfArgs = linkArgs
            elfArgs[elfArgs.firstIndex(of: image) ?? 0] = symbolFile
            run(lld, elfArgs)
            linkArgs.insert("--oformat=binary", at: 0)
        }
        run(lld, linkArgs)
        guard let bytes = FileManager.default.contents(atPath: image) else { fail("\(image) was not written") }
        guard let symbolBytes = FileManager.default.contents(atPath: symbolFile), let symbols = ELFSymbols.read(Array(symbolBytes)) else {
            fail("cannot read the symbol table of \(symbolFile)")
        }
        let symbolList = symbols.sorted { $0.key < $1.key }.map { name, address in
            "\"\(name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\": 0x\(String(address, radix: 16))"
        }
        let name = identifier(prefix: kind.prefix, file: stem)
        names.append(name)
        let rows = stride(from: 0, to: bytes.count, by: 16).map { start in
            "        " + bytes[start..<min(start + 16, bytes.count)].map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + ","
        }
        declarations.append(
            """
                /// `\(kind.folder)/\(source)`, \(bytes.count) bytes.
                public static let \(name) = FirmwareImage(
                    name: "\(kind.folder)/\(stem)", mode: .\(kind.mode), loadAddress: 0x\(String(kind.loadAddress, radix: 16)),
                    format: .\(kind.multiboot ? "multiboot" : kind.elf ? "elf" : "flat"), bytes: [
            \(rows.joined(separator: "\n"))
                    ],
                    symbols: [\(symbolList.isEmpty ? ":" : symbolList.joined(separator: ", "))])
            """)
    }
}

let text = """
    // Generated by FirmwareEmbedder at build time from \(firmware). Do not edit.
    \(importFirmware ? "import Firmware\n" : "")import VMCore

    \(namespace.map { "public enum \($0) {" } ?? "extension FirmwareImage {")
    \(declarations.joined(separator: "\n\n"))

        /// Every guest assembled from this folder.
        public static let \(collection): [FirmwareImage] = [\(names.joined(separator: ", "))]
    }

    """
do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch { fail("cannot write \(output): \(error)") }

// Leave without running exit handlers: under `swift test --sanitize=address`
// this build tool is instrumented too, and LeakSanitizer's exit-time check
// would fail the build over a small allocation Foundation's Process keeps.
_exit(0)

// Build-time tool run by FirmwarePlugin: assembles firmware/<kind>/*.S and
// writes one Swift file with each guest as a `FirmwareImage`.
//
// The folder a guest is in says how it is built and entered:
//   realmode/, demo/     flat binary linked at 0x7c00, entered in real mode
//   protectedmode/       flat binary linked at 0x100000, 32-bit protected mode
//   longmode/            flat binary linked at 0x100000, 64-bit long mode
//   elf/                 ELF64 executable linked at 0x100000, loaded by its headers
// firmware/include/ holds shared macros and is never built on its own.
import Foundation

struct Kind {
    var folder: String
    var prefix: String
    var mode: String
    var loadAddress: UInt64
    var elf: Bool
}

let kinds = [
    Kind(folder: "demo", prefix: "", mode: "real", loadAddress: 0x7c00, elf: false),
    Kind(folder: "realmode", prefix: "real", mode: "real", loadAddress: 0x7c00, elf: false),
    Kind(folder: "protectedmode", prefix: "protected", mode: "protected", loadAddress: 0x10_0000, elf: false),
    Kind(folder: "longmode", prefix: "long", mode: "long", loadAddress: 0x10_0000, elf: false),
    Kind(folder: "elf", prefix: "elf", mode: "long", loadAddress: 0x10_0000, elf: true),
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
let include = firmware + "/include"
var declarations: [String] = []
var names: [String] = []

for kind in kinds {
    let folder = firmware + "/" + kind.folder
    let sources = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [])
        .filter { $0.hasSuffix(".S") }.sorted()
    for source in sources {
        let stem = String(source.dropLast(2))
        let object = "\(work)/\(kind.folder)-\(stem).o"
        let image = "\(work)/\(kind.folder)-\(stem).\(kind.elf ? "elf" : "bin")"
        run(clang, ["-c", "-target", "x86_64-unknown-none-elf", "-nostdinc", "-I", include, "-o", object, folder + "/" + source])
        // The image base is only a default for -Ttext; ld.lld wants it at or below
        // the text and page-aligned, and 0 is both.
        var linkArgs = [
            "--image-base=0", "-nostdlib", "--no-dynamic-linker", "-static", "-e", "_start",
            "-Ttext=0x\(String(kind.loadAddress, radix: 16))", "-o", image, object,
        ]
        if kind.elf {
            linkArgs = ["-nostdlib", "-static", "-T", include + "/elf.ld", "-o", image, object]
        } else {
            linkArgs.insert("--oformat=binary", at: 0)
        }
        run(lld, linkArgs)
        guard let bytes = FileManager.default.contents(atPath: image) else { fail("\(image) was not written") }
        let name = identifier(prefix: kind.prefix, file: stem)
        names.append(name)
        let rows = stride(from: 0, to: bytes.count, by: 16).map { start in
            "        " + bytes[start..<min(start + 16, bytes.count)].map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + ","
        }
        declarations.append(
            """
                /// `firmware/\(kind.folder)/\(source)`, \(bytes.count) bytes.
                public static let \(name) = FirmwareImage(
                    name: "\(kind.folder)/\(stem)", mode: .\(kind.mode), loadAddress: 0x\(String(kind.loadAddress, radix: 16)),
                    format: .\(kind.elf ? "elf" : "flat"), bytes: [
            \(rows.joined(separator: "\n"))
                    ])
            """)
    }
}

let text = """
    // Generated by FirmwareEmbedder from firmware/ at build time. Do not edit.
    import VMCore

    extension FirmwareImage {
    \(declarations.joined(separator: "\n\n"))

        /// Every guest in `firmware/`.
        public static let all: [FirmwareImage] = [\(names.joined(separator: ", "))]
    }

    """
do { try text.write(toFile: output, atomically: true, encoding: .utf8) } catch { fail("cannot write \(output): \(error)") }

import Firmware
import SwiftVMM
import Testing
import VMCore
import VMMTesting
import X86Boot

/// `firmware/bzimage/zeropage-check.S` booted through swiftvmm's Linux loader
/// (`.linux(kernel:initrd:commandLine:)`): the guest prints the `boot_params`
/// it was handed, and each field is checked against what the boot protocol
/// (Documentation/arch/x86/boot.rst) and the loader's placement rules say it
/// must be, computed here independently of the loader and also against its plan.
@Suite(.serialized) struct BzImageBootTests {
    static let kernel = FirmwareImage.bzImageZeropageCheck.bytes
    static let memory: UInt64 = 64 << 20
    static let commandLine = "console=ttyS0 swiftvmm.test=1"
    /// Three pages and five bytes, so the guest's checksum also reads a partial
    /// last word; every byte depends on its offset and its page.
    static let initrd: [UInt8] = (0..<(3 * 4096 + 5)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ ($0 >> 12) &* 101 &+ 7) }

    // MARK: The image itself

    @Test func imageIsABzImageTheLoaderAccepts() throws {
        let image = Self.kernel
        #expect(image[0x1fe] == 0x55 && image[0x1ff] == 0xaa)
        #expect(Array(image[0x202..<0x206]) == Array("HdrS".utf8))
        let header = try LinuxSetupHeader(parsing: image)
        #expect(header.protocolVersion == 0x020f)
        #expect(header.setupSectors == 1)
        #expect(header.setupSize == 1024)
        #expect(header.kernelRange == 1024..<image.count)
        #expect(header.kernelSize % 16 == 0)
        #expect(image.littleEndian(at: 0x1f4, size: 4) * 16 == header.kernelSize)  // syssize
        #expect(header.loadflags == LinuxSetupHeader.loadedHigh)
        #expect(header.xloadflags == LinuxSetupHeader.xlfKernel64 | LinuxSetupHeader.xlfCanBeLoadedAbove4G)
        #expect(header.commandLineSize == 2047)
        #expect(header.initrdAddressMax == 0x7fff_ffff)
        #expect(header.kernelAlignment == 0x20_0000)
        #expect(header.relocatable)
        #expect(header.preferredAddress == 0x10_0000)
        #expect(UInt64(header.initSize) >= header.kernelSize)
        #expect(header.initSize % 0x1000 == 0)
        #expect(header.rawBytes.count == 0x26c - 0x1f1)
        #expect(header.kernelVersion == "zeropage-check (swiftvmm test kernel)")
    }

    // MARK: Booting it

    @Test func zeroPageMatchesTheBootProtocolAndTheLoadersPlan() throws {
        let vm = try TestVM(.linux(kernel: Self.kernel, initrd: Self.initrd, commandLine: Self.commandLine), memory: Self.memory)
        let reason = try vm.runToCompletion(timeout: .seconds(60))
        let output = vm.serialText
        #expect(reason == .debugExit(status: 0), "\(output)")
        let report = try ZeroPageReport(parsing: output)

        // What the machine adds to the memory map: its ACPI tables, at 0xe0000.
        let acpi = try #require(vm.machine.acpiTables, "a Linux guest gets the PC platform and its ACPI tables")
        #expect(acpi.base.rawValue == 0xe_0000)
        let expectedMap = try E820Map(
            guestRAM: [(GuestAddress(0), Self.memory)],
            reserved: [E820Entry(address: acpi.base.rawValue, size: acpi.size, type: .acpi)])

        // Placement, computed from boot.rst and LinuxLayout's rules rather than by the loader:
        // the protected-mode kernel at 1 MiB, entered at +0x200; a relocatable kernel runs at
        // its load address rounded up to kernel_alignment (never below pref_address) and needs
        // init_size bytes there; the initrd goes page-aligned as high as possible in RAM, above
        // all that and ending at or below initrd_addr_max (and 4 GiB).
        let kernelSize = UInt64(Self.kernel.count - 1024)
        let initSize = Self.kernel.littleEndian(at: 0x260, size: 4)
        let runtimeStart = max((0x10_0000 + 0x1f_ffff) & ~UInt64(0x1f_ffff), 0x10_0000)
        #expect(runtimeStart == 0x20_0000)
        let lowest = max(0x10_0000 + kernelSize, runtimeStart + initSize)
        let ceiling = min(UInt64(0x7fff_ffff) + 1, Self.memory)  // RAM is one block [1 MiB, 64 MiB) up there
        let initrdAddress = (ceiling - UInt64(Self.initrd.count)) & ~UInt64(0xfff)
        #expect(initrdAddress == 0x3ff_c000)
        #expect(initrdAddress >= lowest)

        // And the loader's own plan says the same.
        let plan = try LinuxBootLoader(bzImage: Self.kernel).plan(
            commandLine: try KernelCommandLine(Self.commandLine), initrdSize: UInt64(Self.initrd.count), memoryMap: expectedMap)
        #expect(plan.entry64.rawValue == 0x10_0200)
        #expect(plan.zeroPage.rawValue == 0x7000)
        #expect(plan.commandLine.rawValue == 0x2_0000)
        #expect(plan.runtimeStart.rawValue == runtimeStart)
        #expect(plan.runtimeSize == initSize)
        #expect(plan.initrd == LinuxBootPlan.Blob(address: GuestAddress(initrdAddress), size: UInt64(Self.initrd.count)))

        // Entry: long mode at kernel + 0x200 with RSI = the zero page, interrupts off.
        #expect(report["entry"] == 0x10_0200, "\(output)")
        #expect(report["boot_params"] == 0x7000, "\(output)")
        #expect(report.text["interrupts"] == "off", "\(output)")

        // type_of_loader 0xff ("undefined"), the command line verbatim, in low memory.
        #expect(report["loader"] == 0xff, "\(output)")
        #expect(report.commandLine == Self.commandLine, "\(output)")
        let commandLinePointer = try #require(report["cmdline_ptr"])
        #expect(commandLinePointer == 0x2_0000)
        #expect(commandLinePointer + UInt64(Self.commandLine.utf8.count) < 0xa_0000, "boot.rst: below the EBDA")
        #expect(try vm.read(count: Self.commandLine.utf8.count + 1, at: commandLinePointer) == Array(Self.commandLine.utf8) + [0])

        // The initrd: page-aligned, below initrd_addr_max, inside RAM above the kernel, intact.
        let address = try #require(report["initrd"])
        let size = try #require(report["size"])
        #expect(address == initrdAddress, "\(output)")
        #expect(address % 0x1000 == 0)
        #expect(address + size - 1 <= 0x7fff_ffff)
        #expect(address >= lowest && address + size <= Self.memory)
        #expect(expectedMap.containsRAM(address: address, size: size))
        #expect(size == UInt64(Self.initrd.count))
        let checksum = Self.checksum(Self.initrd)
        #expect(report["initrd_sum"] == checksum.sum, "\(output)")
        #expect(report["initrd_weighted"] == checksum.weighted, "\(output)")
        #expect(try vm.read(count: Self.initrd.count, at: address) == Self.initrd)

        // The E820 table: 64 MiB of RAM from 0, the legacy hole reserved, the ACPI tables as ACPI.
        let e820Text = report.e820.map { "  \(E820Entry(address: $0.address, size: $0.size, type: E820Type(rawValue: $0.type)))" }
            .joined(separator: "\n")
        let expectedText = expectedMap.entries.map { "  \($0)" }.joined(separator: "\n")
        #expect(report["count"] == UInt64(expectedMap.entries.count), "guest saw:\n\(e820Text)\nexpected:\n\(expectedText)")
        #expect(
            report.e820.map { E820Entry(address: $0.address, size: $0.size, type: E820Type(rawValue: $0.type)) } == expectedMap.entries,
            "guest saw:\n\(e820Text)\nexpected:\n\(expectedText)")
        #expect(report.e820.first.map { [$0.address, $0.size, UInt64($0.type)] } == [0, 0x9_fc00, 1], "\(e820Text)")
        #expect(report.e820.last.map { [$0.address, $0.size, UInt64($0.type)] } == [0x10_0000, Self.memory - 0x10_0000, 1], "\(e820Text)")

        // acpi_rsdp_addr points at an RSDP in the BIOS area.
        let rsdp = try #require(report["acpi_rsdp"])
        #expect(rsdp == acpi.rsdpAddress.rawValue)
        #expect((0xe_0000..<0x10_0000).contains(rsdp) && rsdp % 16 == 0)
        #expect(try vm.read(count: 8, at: rsdp) == Array("RSD PTR ".utf8))

        // The setup header was copied into boot_params.
        #expect(report.text["hdrs"] == "OK", "\(output)")
        #expect(report["version"] == 0x020f, "\(output)")

        // Nothing else, in this order.
        let expected =
            """
            zeropage: entry=\(Self.hex16(0x10_0200)) boot_params=\(Self.hex16(0x7000)) interrupts=off
            zeropage: loader=ff
            zeropage: cmdline=\(Self.commandLine)
            zeropage: cmdline_ptr=\(Self.hex16(0x2_0000))
            zeropage: initrd=\(Self.hex16(initrdAddress)) size=\(Self.hex16(UInt64(Self.initrd.count)))
            zeropage: initrd_sum=\(Self.hex16(checksum.sum)) initrd_weighted=\(Self.hex16(checksum.weighted))
            zeropage: e820 count=\(Self.hex(UInt64(expectedMap.entries.count), 2))
            \(expectedMap.entries.map { "zeropage: e820 \(Self.hex16($0.address)) \(Self.hex16($0.size)) \(Self.hex(UInt64($0.type.rawValue), 8))\n" }.joined())\
            zeropage: acpi_rsdp=\(Self.hex16(acpi.rsdpAddress.rawValue))
            zeropage: hdrs=OK version=020f
            zeropage: done

            """
        #expect(output == expected)
    }

    @Test func withoutInitrdOrCommandLineTheirFieldsAreEmpty() throws {
        let vm = try TestVM(.linux(kernel: Self.kernel, initrd: nil, commandLine: ""), memory: Self.memory)
        let reason = try vm.runToCompletion(timeout: .seconds(60))
        let output = vm.serialText
        #expect(reason == .debugExit(status: 0), "\(output)")
        let report = try ZeroPageReport(parsing: output)
        #expect(report.commandLine == "", "\(output)")
        #expect(report["cmdline_ptr"] == 0x2_0000, "\(output)")
        #expect(try vm.read(count: 1, at: 0x2_0000) == [0])
        #expect(report["initrd"] == 0, "\(output)")
        #expect(report["size"] == 0, "\(output)")
        #expect(report["initrd_sum"] == 0 && report["initrd_weighted"] == 0, "\(output)")
        #expect(report["loader"] == 0xff && report.text["hdrs"] == "OK", "\(output)")
        #expect(output.hasSuffix("zeropage: done\n"))
    }

    // MARK: Corrupted copies are refused

    @Test(arguments: [
        Corruption(name: "bad HdrS magic", offset: 0x202, bytes: Array("HdrX".utf8), says: "setup header magic (0x202)"),
        Corruption(name: "bad boot_flag", offset: 0x1fe, bytes: [0x55, 0x00], says: "boot_flag (0x1fe)"),
        Corruption(name: "protocol 2.05", offset: 0x206, bytes: [0x05, 0x02], says: "boot protocol is 2.05"),
        Corruption(name: "no XLF_KERNEL_64", offset: 0x236, bytes: [0x02, 0x00], says: "XLF_KERNEL_64"),
        Corruption(name: "no LOADED_HIGH", offset: 0x211, bytes: [0x00], says: "LOADED_HIGH"),
    ])
    func corruptedImageIsRefusedWithTheLoadersError(_ corruption: Corruption) throws {
        var image = Self.kernel
        image.replaceSubrange(corruption.offset..<corruption.offset + corruption.bytes.count, with: corruption.bytes)
        // The loader's own message for this image, which the VM must pass on unchanged.
        var loaderMessage = ""
        do { _ = try LinuxBootLoader(bzImage: image) } catch { loaderMessage = error.description }
        #expect(loaderMessage.contains(corruption.says), "\(corruption.name): \(loaderMessage)")

        let error = #expect(throws: VMTestError.self, "\(corruption.name)") {
            _ = try TestVM(.linux(kernel: image, initrd: Self.initrd, commandLine: Self.commandLine), memory: Self.memory)
        }
        guard case .machine(let message)? = error?.kind else {
            Issue.record("\(corruption.name): expected a machine error, got \(String(describing: error))")
            return
        }
        #expect(message == loaderMessage, "\(corruption.name)")
        #expect(message.contains(corruption.says), "\(corruption.name): \(message)")
    }

    struct Corruption: Sendable, CustomTestStringConvertible {
        var name: String
        var offset: Int
        var bytes: [UInt8]
        /// A phrase the error must contain.
        var says: String
        var testDescription: String { name }
    }

    // MARK: Helpers

    /// The guest's initrd checksum: the initrd as little-endian u64 words, the
    /// last zero-padded; the sum of the words and the sum of the running sums, mod 2^64.
    static func checksum(_ bytes: [UInt8]) -> (sum: UInt64, weighted: UInt64) {
        var sum: UInt64 = 0
        var weighted: UInt64 = 0
        for start in stride(from: 0, to: bytes.count, by: 8) {
            let word = bytes[start..<min(start + 8, bytes.count)].enumerated().reduce(UInt64(0)) {
                $0 | UInt64($1.element) << ($1.offset * 8)
            }
            sum &+= word
            weighted &+= sum
        }
        return (sum, weighted)
    }

    static func hex(_ value: UInt64, _ digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    static func hex16(_ value: UInt64) -> String { hex(value, 16) }
}

/// zeropage-check's output: `zeropage: key=value key=value` lines, the command
/// line verbatim, and one `zeropage: e820 ADDRESS SIZE TYPE` line per entry.
private struct ZeroPageReport {
    struct Entry {
        var address: UInt64
        var size: UInt64
        var type: UInt32
    }

    /// Every `key=value` outside the command line, as text.
    var text: [String: String] = [:]
    var commandLine: String?
    var e820: [Entry] = []

    /// A value as a hex number.
    subscript(key: String) -> UInt64? { text[key].flatMap { UInt64($0, radix: 16) } }

    init(parsing output: String) throws {
        guard output.hasSuffix("zeropage: done\n") else { throw ReportError(message: "the guest did not finish:\n\(output)") }
        for line in output.split(separator: "\n") {
            guard line.hasPrefix("zeropage: ") else {
                throw ReportError(message: "unexpected line \(line.debugDescription) in:\n\(output)")
            }
            let body = line.dropFirst("zeropage: ".count)
            if body == "done" { continue }
            if body.hasPrefix("cmdline=") {
                commandLine = String(body.dropFirst("cmdline=".count))
                continue
            }
            let words = body.split(separator: " ")
            if words.count == 4, words[0] == "e820", let address = UInt64(words[1], radix: 16),
                let size = UInt64(words[2], radix: 16), let type = UInt32(words[3], radix: 16)
            {
                e820.append(Entry(address: address, size: size, type: type))
                continue
            }
            for word in words where word != "e820" {
                let parts = word.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else {
                    throw ReportError(message: "cannot parse \(word.debugDescription) in \(line.debugDescription)")
                }
                text[String(parts[0])] = String(parts[1])
            }
        }
    }

    struct ReportError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}

extension Array where Element == UInt8 {
    /// The little-endian integer of `size` bytes at `offset`.
    fileprivate func littleEndian(at offset: Int, size: Int) -> UInt64 {
        (0..<size).reduce(0) { $0 | UInt64(self[offset + $1]) << ($1 * 8) }
    }
}

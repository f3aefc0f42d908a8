import Testing
import X86Boot

@Suite struct KernelCommandLineTests {
    @Test func buildsASpaceSeparatedLine() throws {
        var line = KernelCommandLine()
        #expect(line.isEmpty && line.description == "" && line.nulTerminated == [0])
        try line.append("console=ttyS0")
        try line.append(key: "reboot", value: "k")
        try line.append("")
        try line.append("panic=-1 root=/dev/vda rw")
        #expect(line.description == "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw")
        #expect(line.nulTerminated == Array("console=ttyS0 reboot=k panic=-1 root=/dev/vda rw".utf8) + [0])
        #expect(line.capacity == 2047)
        #expect(try KernelCommandLine("a b") == KernelCommandLine("a").appending("b"))
    }

    @Test func rejectsBytesThatAreNotPrintableASCII() throws {
        var line = try KernelCommandLine("quiet")
        #expect(throws: BootError.commandLineInvalidCharacter(byte: 0, offset: 7)) { try line.append("a\u{0}b") }
        #expect(throws: BootError.commandLineInvalidCharacter(byte: 0x0a, offset: 6)) { try line.append("\n") }
        #expect(throws: BootError.commandLineInvalidCharacter(byte: 0x09, offset: 9)) { try line.append("foo\tbar") }
        #expect(throws: BootError.commandLineInvalidCharacter(byte: 0xc3, offset: 13)) { try line.append("ext=caf\u{e9}") }
        #expect(throws: BootError.commandLineInvalidCharacter(byte: 0x7f, offset: 0)) { _ = try KernelCommandLine("\u{7f}") }
        #expect(line.description == "quiet", "a failed append changes nothing")
        #expect(
            BootError.commandLineInvalidCharacter(byte: 0, offset: 7).description
                == "kernel command line byte 7 is 0x0, expected printable ASCII (0x20-0x7e)")
    }

    @Test func checksCapacity() throws {
        var line = KernelCommandLine(capacity: 10)
        try line.append("0123")
        try line.append("56789")  // "0123 56789": exactly 10 bytes
        #expect(line.bytes.count == 10)
        #expect(throws: BootError.commandLineTooLong(length: 12, capacity: 10)) { try line.append("x") }
        #expect(line.description == "0123 56789")
        #expect(throws: BootError.commandLineTooLong(length: 11, capacity: 10)) { _ = try KernelCommandLine("01234567890", capacity: 10) }
        #expect(
            BootError.commandLineTooLong(length: 12, capacity: 10).description
                == "kernel command line is 12 bytes, the kernel accepts at most 10")
    }

    @Test func checksAgainstTheKernelsLimit() throws {
        let line = try KernelCommandLine(String(repeating: "x", count: 300))
        try line.check(fitsIn: 300)
        #expect(throws: BootError.commandLineTooLong(length: 300, capacity: 255)) { try line.check(fitsIn: 255) }
    }
}

extension KernelCommandLine {
    fileprivate func appending(_ parameter: String) throws -> KernelCommandLine {
        var copy = self
        try copy.append(parameter)
        return copy
    }
}

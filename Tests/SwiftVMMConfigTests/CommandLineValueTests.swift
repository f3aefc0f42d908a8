import SwiftVMMConfig
import Testing

/// The parsers behind --memory, --load-address, --entry and --timeout.
@Suite struct CommandLineValueTests {
    @Test func sizesAddressesAndDurationsParse() throws {
        #expect(try CommandLineValue.parseSize("64M") == 64 << 20)
        #expect(try CommandLineValue.parseSize("1_048_576") == 1 << 20)
        #expect(try CommandLineValue.parseAddress("0x7C00") == 0x7c00)
        #expect(try CommandLineValue.parseAddress("31744") == 31744)
        #expect(try CommandLineValue.parseDuration("500ms") == .milliseconds(500))
        #expect(try CommandLineValue.parseDuration("2m") == .seconds(120))
    }

    /// Digits of other scripts and fractions are not numbers here; they used
    /// to be reported as values that "do not fit in 64 bits".
    @Test(arguments: ["６４", "١٢", "½", "²"])
    func nonASCIIDigitsAreNotNumbers(_ text: String) {
        #expect(throws: CommandLineValue.ParseError.notANumber(text)) { _ = try CommandLineValue.parseAddress(text) }
        #expect(throws: CommandLineValue.ParseError.notANumber(text + "M")) { _ = try CommandLineValue.parseSize(text + "M") }
        #expect(throws: CommandLineValue.ParseError.notADuration(text + "s")) { _ = try CommandLineValue.parseDuration(text + "s") }
    }

    @Test func nonASCIIHexDigitsAreNotHex() {
        #expect(throws: CommandLineValue.ParseError.notANumber("0x１f")) { _ = try CommandLineValue.parseAddress("0x１f") }
    }

    @Test func overflowIsReportedAsOverflow() {
        #expect(throws: CommandLineValue.ParseError.overflow("18446744073709551616")) {
            _ = try CommandLineValue.parseAddress("18446744073709551616")
        }
        #expect(throws: CommandLineValue.ParseError.overflow("17179869184G")) { _ = try CommandLineValue.parseSize("17179869184G") }
        #expect(throws: CommandLineValue.ParseError.overflow("9223372036854775807m")) {
            _ = try CommandLineValue.parseDuration("9223372036854775807m")
        }
    }
}

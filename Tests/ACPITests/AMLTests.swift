import ACPI
import Testing

@Suite struct AMLTests {
    @Test func integersUseTheShortestEncoding() {
        #expect(AML.integer(0) == [0x00])  // ZeroOp
        #expect(AML.integer(1) == [0x01])  // OneOp
        #expect(AML.integer(5) == [0x0a, 0x05])
        #expect(AML.integer(0xff) == [0x0a, 0xff])
        #expect(AML.integer(0x1234) == [0x0b, 0x34, 0x12])
        #expect(AML.integer(0x1234_5678) == [0x0c, 0x78, 0x56, 0x34, 0x12])
        #expect(AML.integer(0x1_0000_0000) == [0x0e, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func packageLengthCountsItselfAndGrowsAtEachBoundary() {
        #expect(AML.packageLength(enclosing: 0) == [0x01])
        #expect(AML.packageLength(enclosing: 62) == [0x3f])
        // 63 bytes of content need a two-byte PkgLength: 63 + 2 = 65 = 0x41.
        #expect(AML.packageLength(enclosing: 63) == [0x41, 0x04])
        // The largest two-byte length is 0xfff.
        #expect(AML.packageLength(enclosing: 0xffd) == [0x4f, 0xff])
        #expect(AML.packageLength(enclosing: 0xffe) == [0x81, 0x00, 0x01])  // 0xffe + 3 = 0x1001
        #expect(AML.packageLength(enclosing: 0xf_fffc) == [0x8f, 0xff, 0xff])
        #expect(AML.packageLength(enclosing: 0xf_fffd) == [0xc1, 0x00, 0x00, 0x01])  // + 4 = 0x100001
    }

    @Test func nameBindsAPackage() {
        let s5 = AML.name("_S5_", AML.package([AML.integer(5), AML.integer(5), AML.integer(0), AML.integer(0)]))
        #expect(s5 == [0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 0x05, 0x0a, 0x05, 0x00, 0x00])
    }

    @Test func longPackagesGetATwoBytePkgLength() {
        let package = AML.package(Array(repeating: AML.integer(0x10), count: 40))
        // 1 (NumElements) + 80 bytes of elements + 2 of PkgLength = 83 = 0x53.
        #expect(package.prefix(4) == [0x12, 0x43, 0x05, 40])
        #expect(package.count == 1 + 2 + 1 + 80)
    }

    @Test func emptyPackage() {
        #expect(AML.package([]) == [0x12, 0x02, 0x00])
    }
}

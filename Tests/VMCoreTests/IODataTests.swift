import Testing
import VMCore

@Suite struct IODataTests {
    @Test func valueIsMaskedToItsSize() {
        let data = IOData(value: 0x1122_3344_5566_7788, size: 2)
        #expect(data.count == 2)
        #expect(data.value == 0x7788)
        #expect(data.bytes == [0x88, 0x77])
    }

    @Test func sameBytesCompareEqualWhicheverInitializerMadeThem() {
        #expect(IOData(value: 0x0403_0201, size: 4) == IOData(bytes: [1, 2, 3, 4]))
        #expect(IOData(value: 0x01, size: 1) != IOData(value: 0x01, size: 2))
    }

    @Test func longBuffersKeepEveryByte() {
        let bytes = Array(UInt8(0)..<20)
        let data = IOData(bytes: bytes)
        #expect(data.count == 20)
        #expect(data.bytes == bytes)
        #expect(data.value == 0x0706_0504_0302_0100)
    }

    @Test(arguments: [1, 2, 4])
    func elementsOfAStringAccessAreLittleEndian(size: Int) {
        let bytes = Array(UInt8(1)...24)
        let data = IOData(bytes: bytes)
        for index in 0..<(24 / size) {
            var expected: UInt64 = 0
            for i in 0..<size { expected |= UInt64(bytes[index * size + i]) << (UInt64(i) * 8) }
            #expect(data.element(index, size: size) == expected)
        }
    }

    @Test func elementsPastTheEndReadAsZeroInsteadOfTrapping() {
        let data = IOData(value: 0xaabb, size: 2)
        #expect(data.element(5, size: 2) == 0)
        #expect(data.element(0, size: 16) == 0xaabb)
        #expect(IOData(bytes: Array(repeating: UInt8(0xff), count: 9)).element(100, size: 4) == 0)
    }

    @Test func allOnesMatchesTheAccessSize() {
        #expect(IOData.allOnes(size: 1).value == 0xff)
        #expect(IOData.allOnes(size: 4).value == 0xffff_ffff)
        #expect(IOData.allOnes(size: 8).value == .max)
    }

    @Test func guestAddressArithmeticReportsOverflow() {
        #expect(GuestAddress(0x1000).adding(0x10) == GuestAddress(0x1010))
        #expect(GuestAddress(.max).adding(1) == nil)
        #expect(GuestAddress(0x7c00).description == "0x7c00")
    }
}

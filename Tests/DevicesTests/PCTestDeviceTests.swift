import Devices
import Testing
import VMCore

/// QEMU's pc-testdev as kvm-unit-tests drives it, with plain reads and writes.
@Suite struct PCTestDeviceTests {
    @Test func theScratchRegisterKeepsWhatEachWidthWrote() {
        let device = PCTestDevice(lines: [:])
        let port = device.ioPort
        _ = port.write(offset: 0, size: 4, value: 0x1234_5678)
        #expect(port.read(offset: 0, size: 4) == 0x1234_5678)
        #expect(port.read(offset: 0, size: 1) == 0x78 && port.read(offset: 2, size: 2) == 0x1234)
        _ = port.write(offset: 1, size: 1, value: 0xab)
        #expect(port.read(offset: 0, size: 4) == 0x1234_ab78, "a byte write replaces only its byte")
        _ = port.write(offset: 2, size: 2, value: 0xffff_cdef)
        #expect(port.read(offset: 0, size: 4) == 0xcdef_ab78, "bits above the access are dropped")
        // realmode.flat's io tests: out/in of al, ax and eax at 0xe0.
        _ = port.write(offset: 0, size: 1, value: 0x42)
        #expect(port.read(offset: 0, size: 1) == 0x42)
        // The flush-page port takes writes and changes nothing.
        #expect(port.write(offset: 4, size: 4, value: 0x40_0000) == nil)
        #expect(port.read(offset: 0, size: 4) == 0xcdef_ab42)
    }

    @Test func eachPortDrivesItsInterruptLine() {
        let line14 = RecordingInterruptLine()
        let line11 = RecordingInterruptLine()
        let device = PCTestDevice(lines: [14: line14, 11: line11])
        _ = device.interruptLines.write(offset: 14, size: 1, value: 1)
        _ = device.interruptLines.write(offset: 14, size: 1, value: 0)
        _ = device.interruptLines.write(offset: 11, size: 1, value: 0x100)
        _ = device.interruptLines.write(offset: 20, size: 1, value: 1)  // no line wired: ignored
        #expect(line14.levels == [true, false])
        #expect(line11.levels == [false], "only the access's bytes count: 0x100 as one byte is 0")
        #expect(device.interruptLines.read(offset: 14, size: 1) == 0xff)
    }

    @Test func theMemoryWindowIsPlainMemory() {
        let memory = PCTestDevice(lines: [:]).memory
        _ = memory.write(offset: 0x10, size: 8, value: 0x0102_0304_0506_0708)
        #expect(memory.read(offset: 0x10, size: 8) == 0x0102_0304_0506_0708)
        #expect(memory.read(offset: 0x13, size: 2) == 0x0405)
        _ = memory.write(offset: PCTestDevice.memorySize - 1, size: 4, value: 0xaabb_ccdd)
        #expect(memory.read(offset: PCTestDevice.memorySize - 1, size: 4) == 0xdd, "nothing past the window")
        #expect(memory.read(offset: .max, size: 8) == 0 && memory.read(offset: 0, size: -1) == 0)
    }
}

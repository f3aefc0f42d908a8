import ACPI
import Testing
import VMCore

/// The legacy devices the DSDT lists, byte for byte (ACPI 6.5: 19.6.29 Device,
/// 6.4.2.1 IRQ, 6.4.2.5 I/O port descriptors), and what the builder refuses.
@Suite struct ACPIISADeviceTests {
    static let com1 = ACPIISADevice(
        name: "COM1", hardwareID: "PNP0501", uniqueID: 1, ports: [.init(base: 0x3f8, length: 8)], irqs: [4])

    private func dsdt(_ devices: [ACPIISADevice], mmio: [ACPIMMIODevice] = []) throws -> [UInt8] {
        var configuration = ACPIConfiguration(vCPUCount: 1)
        configuration.isaDevices = devices
        configuration.mmioDevices = mmio
        return try #require(ACPITableBuilder.build(configuration, at: base)[signature: "DSDT"]).bytes
    }

    @Test func aUARTIsADeviceWithItsPortsAndIRQ() throws {
        let bytes = try dsdt([Self.com1])
        let device: [UInt8] =
            [0x5b, 0x82, 0x2f] + Array("COM1".utf8)  // Device (COM1), 46 bytes after PkgLength
            + [0x08] + Array("_HID".utf8) + [0x0d] + Array("PNP0501".utf8) + [0x00]
            + [0x08] + Array("_UID".utf8) + [0x01]
            + [0x08] + Array("_CRS".utf8) + [0x11, 0x10, 0x0a, 0x0d]  // Buffer (13)
            + [0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08]  // IO (Decode16, 0x3f8, 0x3f8, 1, 8)
            + [0x22, 0x10, 0x00]  // IRQNoFlags () {4}
            + [0x79, 0x00]  // EndTag
        // After the header and \_S3_-less \_S5_ (14 bytes): Scope (\_SB_) { device }.
        let scope = [0x10, UInt8(1 + 5 + device.count), 0x5c] + Array("_SB_".utf8)
        #expect(bytes.slice(36 + 14, scope.count + device.count) == scope + device)
        #expect(bytes.count == 36 + 14 + scope.count + device.count)
        #expect(bytes.byteSum == 0)
    }

    @Test func theKeyboardControllerHasTwoPortsAndAMouseOnlyAnIRQ() throws {
        let keyboard = ACPIISADevice(
            name: "KBD_", hardwareID: "PNP0303", ports: [.init(base: 0x60, length: 1), .init(base: 0x64, length: 1)], irqs: [1])
        let mouse = ACPIISADevice(name: "MOU_", hardwareID: "PNP0F13", ports: [], irqs: [12])
        let bytes = try dsdt([keyboard, mouse])
        let keyboardResources: [UInt8] = [
            0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00,
            0x79, 0x00,
        ]
        let mouseResources: [UInt8] = [0x22, 0x00, 0x10, 0x79, 0x00]
        #expect(bytes.firstRange(of: [0x0a, UInt8(keyboardResources.count)] + keyboardResources) != nil)
        #expect(bytes.firstRange(of: [0x0a, UInt8(mouseResources.count)] + mouseResources) != nil)
        // The keyboard comes first, as listed.
        let kbd = try #require(bytes.firstRange(of: Array("KBD_".utf8)))
        let mou = try #require(bytes.firstRange(of: Array("MOU_".utf8)))
        #expect(kbd.lowerBound < mou.lowerBound)
    }

    @Test func isaDevicesComeBeforeTheVirtioTransportsInOneScope() throws {
        let virtio = ACPIMMIODevice(hardwareID: "LNRO0005", uniqueID: 0, base: 0xd000_0000, length: 0x200, gsi: 5)
        let bytes = try dsdt([Self.com1], mmio: [virtio])
        #expect(bytes.ranges(of: Array("_SB_".utf8)).count == 1)
        let com1 = try #require(bytes.firstRange(of: Array("COM1".utf8)))
        let vr00 = try #require(bytes.firstRange(of: Array("VR00".utf8)))
        #expect(com1.lowerBound < vr00.lowerBound)
    }

    @Test func devicesTheDSDTCannotDescribeAreRefused() {
        func refused(_ device: ACPIISADevice, mmio: [ACPIMMIODevice] = [], _ problem: String) {
            #expect(throws: ACPIError.invalidISADevice(name: device.name, problem: problem)) { try dsdt([device], mmio: mmio) }
        }
        var device = Self.com1
        device.name = "com1"
        refused(device, "the name must be four characters, A-Z or _ and then A-Z, 0-9 or _")
        device.name = "1COM"
        refused(device, "the name must be four characters, A-Z or _ and then A-Z, 0-9 or _")
        device.name = "VR00"
        let virtio = ACPIMMIODevice(hardwareID: "LNRO0005", uniqueID: 0, base: 0xd000_0000, length: 0x200, gsi: 5)
        refused(device, mmio: [virtio], "the name is used by another device")
        device = Self.com1
        device.hardwareID = "PNP501"
        refused(device, "hardware ID \"PNP501\" is not a PNP ID (three capital letters, four hex digits)")
        device.hardwareID = "pnp0501"
        refused(device, "hardware ID \"pnp0501\" is not a PNP ID (three capital letters, four hex digits)")
        device = Self.com1
        device.irqs = [16]
        refused(device, "IRQ 16 is not an ISA IRQ (0-15)")
        device = Self.com1
        device.ports = [.init(base: 0x3f8, length: 0)]
        refused(device, "a port range has length 0")
        device.ports = [.init(base: 0xfffc, length: 8)]
        refused(device, "ports 0xfffc + 8 run past 0xffff")
        device = Self.com1
        device.name = "_COM"
        refused(device, "names starting with _ are ACPI's own")
        var second = Self.com1
        second.name = "COM2"
        #expect(throws: ACPIError.invalidISADevice(name: "COM2", problem: "another PNP0501 has _UID 1")) {
            try dsdt([Self.com1, second])
        }
        second.uniqueID = 2
        #expect(throws: Never.self) { try dsdt([Self.com1, second]) }
        #expect(throws: ACPIError.invalidISADevice(name: "COM1", problem: "the name is used by another device")) {
            try dsdt([Self.com1, Self.com1])
        }
        #expect(
            ACPIError.invalidISADevice(name: "COM1", problem: "IRQ 16 is not an ISA IRQ (0-15)").description
                == "ISA device \"COM1\": IRQ 16 is not an ISA IRQ (0-15)")
    }
}

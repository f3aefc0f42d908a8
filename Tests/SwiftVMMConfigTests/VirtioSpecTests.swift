import SwiftVMMConfig
import Testing

/// The virtio device fields: parsed into devices in a fixed order, and one
/// line naming the flag or the file and field for each mistake.
@Suite struct VirtioSpecTests {
    func devices(_ spec: MachineSpec, source: SpecSource = .flags) throws(SpecError) -> [VirtioDeviceConfiguration] {
        try spec.resolve(source: source).virtioDevices
    }

    func message(_ spec: MachineSpec, source: SpecSource = .flags) -> String {
        do {
            _ = try devices(spec, source: source)
            return "no error"
        } catch { return error.description }
    }

    @Test func devicesComeInTheLayoutsOrder() throws {
        let spec = MachineSpec(
            disk: ["path=a.img,readonly=on,id=root", "b.img"], net: ["tap=tap0,mac=02:00:00:00:00:07"], vsock: "cid=3,socket=/tmp/v.sock",
            rng: true, balloon: true, consoleDevice: "file:hvc0.log")
        #expect(
            try devices(spec) == [
                .block(.init(path: "a.img", readOnly: true, identifier: "root")), .block(.init(path: "b.img")),
                .network(.init(tap: "tap0", mac: [2, 0, 0, 0, 0, 7])), .vsock(.init(cid: 3, socketPath: "/tmp/v.sock")), .entropy, .balloon,
                .console(.file("hvc0.log")),
            ])
    }

    @Test func pathsFromAConfigFileAreRelativeToIt() throws {
        let spec = MachineSpec(disk: ["path=disk.img"], consoleDevice: "socket:hvc0.sock")
        #expect(
            try devices(spec, source: .configFile("vms/one.json")) == [
                .block(.init(path: "vms/disk.img")), .console(.socket("vms/hvc0.sock")),
            ])
    }

    @Test func badValuesNameTheFlagOrTheField() {
        #expect(message(MachineSpec(disk: ["readonly=on"])) == "--disk: 'readonly=on' has no path=FILE")
        #expect(message(MachineSpec(disk: ["path=a.img,cache=none"])).hasPrefix("--disk: unknown option 'cache'"))
        #expect(message(MachineSpec(disk: ["path=a.img,readonly=yes"])) == "--disk: readonly=yes: expected on or off")
        #expect(message(MachineSpec(disk: ["path=a.img,path=b.img"])) == "--disk: 'path' is given twice in 'path=a.img,path=b.img'")
        #expect(
            message(MachineSpec(disk: ["path=a.img,id=\(String(repeating: "x", count: 21))"])).contains("longer than virtio-blk's 20 bytes")
        )
        #expect(message(MachineSpec(net: ["tap=tap0", "tap=tap0"])) == "--net: tap 'tap0' is given twice")
        #expect(message(MachineSpec(net: ["tap=a/b"])).contains("is not a network interface name"))
        #expect(message(MachineSpec(net: ["tap=t,mac=01:00:00:00:00:01"])).contains("multicast"))
        #expect(message(MachineSpec(net: ["tap=t,mac=zz"])).contains("is not a MAC address"))
        #expect(message(MachineSpec(vsock: "cid=2,socket=/tmp/v")).hasPrefix("--vsock: cid '2' is not a guest CID"))
        #expect(message(MachineSpec(vsock: "cid=3")) == "--vsock: 'cid=3' has no socket=PATH")
        #expect(message(MachineSpec(consoleDevice: "tcp:1234")) == "--console-device: 'tcp:1234' is not socket:PATH or file:PATH")
        #expect(message(MachineSpec(disk: ["x=1"]), source: .configFile("vm.json")).hasPrefix("vm.json: disk: unknown option 'x'"))
    }

    @Test func jsonTakesOneStringOrAnArray() throws {
        let one = try MachineSpec(json: Array(#"{"disk": "path=a.img", "rng": true}"#.utf8), file: "vm.json")
        #expect(one.disk == ["path=a.img"])
        #expect(one.rng == true)
        #expect(throws: SpecError.self) { try MachineSpec(json: Array(#"{"disk": [1]}"#.utf8), file: "vm.json") }
        do {
            _ = try MachineSpec(json: Array(#"{"rng": "yes"}"#.utf8), file: "vm.json")
            Issue.record("a string for rng was accepted")
        } catch { #expect(error.description == "vm.json: rng: expected true or false, found \"yes\"") }
    }
}

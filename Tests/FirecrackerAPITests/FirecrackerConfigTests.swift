import FirecrackerAPI
import SwiftVMMConfig
import Testing

/// The config file's mapping onto `MachineSpec` and back, and strict decoding.
@Suite struct FirecrackerConfigTests {
    func decode(_ text: String) throws(APIFault) -> FirecrackerConfig { try FirecrackerConfig.decode(Array(text.utf8)) }

    @Test func firecrackersGettingStartedConfigMapsOntoTheSpec() throws {
        let config = try decode(
            #"{"boot-source": {"kernel_image_path": "vmlinux", "boot_args": "console=ttyS0 reboot=k panic=1", "initrd_path": "initrd"}, "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false}}"#
        )
        let spec = try config.machineSpec()
        #expect(
            spec == MachineSpec(memory: "1024M", kernel: "vmlinux", initrd: "initrd", cmdline: "console=ttyS0 reboot=k panic=1", cpus: "2"))
        let back = FirecrackerConfig(spec: spec)
        #expect(back.bootSource == config.bootSource)
        #expect(back.machineConfig?.vcpuCount == 2 && back.machineConfig?.memSizeMib == 1024)
        #expect(try back.machineSpec() == spec)
    }

    @Test func theExtrasMapOntoTheirSpecFields() throws {
        let config = try decode(
            #"{"x-swiftvmm": {"guest": "a.bin", "mode": "long", "load_address": "0x200000", "entry": "0x200010", "cpuid_mask": ["xsave"], "serial2": "file:com2", "debugcon": "e9.txt"}}"#
        )
        let spec = try config.machineSpec()
        #expect(
            spec
                == MachineSpec(
                    guest: "a.bin", mode: "long", loadAddress: "0x200000", entry: "0x200010", cpuidMask: ["xsave"], serial2: "file:com2",
                    debugcon: "e9.txt"))
        #expect(FirecrackerConfig(spec: spec).extras == config.extras)
    }

    @Test func multibootModulesGoWhereTheSpecKeepsThem() throws {
        let config = try decode(#"{"boot-source": {"kernel_image_path": "mb.elf"}, "x-swiftvmm": {"modules": "a.txt one,b.txt"}}"#)
        #expect(try config.machineSpec().initrd == "a.txt one,b.txt")
    }

    @Test func devicesBecomeTheSpecsVirtioFieldsRootFirst() throws {
        let config = try decode(
            #"{"boot-source": {"kernel_image_path": "k", "boot_args": "console=ttyS0"}, "#
                + #""drives": [{"drive_id": "data", "is_root_device": false, "path_on_host": "d.img", "is_read_only": true}, "#
                + #"{"drive_id": "root", "is_root_device": true, "path_on_host": "r.img"}], "#
                + #""network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "02:00:00:00:00:07"}], "#
                + #""vsock": {"guest_cid": 3, "uds_path": "v.sock"}, "entropy": {}, "balloon": {"amount_mib": 0, "deflate_on_oom": true}}"#)
        let spec = try config.machineSpec()
        #expect(spec.disk == ["path=r.img,readonly=off,id=root", "path=d.img,readonly=on,id=data"])
        #expect(spec.cmdline == "console=ttyS0 root=/dev/vda rw")
        #expect(spec.net == ["tap=tap0,mac=02:00:00:00:00:07"])
        #expect(spec.vsock == "cid=3,socket=v.sock")
        #expect(spec.rng == true)
        #expect(spec.balloon == true)
        // And back: the devices of a spec as resources.
        let back = FirecrackerConfig(spec: spec)
        #expect(back.drives?.map(\.pathOnHost) == ["r.img", "d.img"])
        #expect(back.networkInterfaces?.first?.guestMac == "02:00:00:00:00:07")
        #expect(back.vsock?.guestCid == 3)
        #expect(back.entropy != nil)
        #expect(back.balloon != nil)
    }

    @Test(arguments: [
        (
            #"{"drives": [{"drive_id": "root", "is_root_device": true, "socket": "/run/vhost.sock"}], "x-swiftvmm": {"guest": "g"}}"#,
            "drives[root].socket: vhost-user drives are not supported"
        ),
        (
            #"{"drives": [{"drive_id": "root", "is_root_device": true, "path_on_host": "a,b.img"}], "x-swiftvmm": {"guest": "g"}}"#,
            "drives[root].path_on_host: 'a,b.img' contains a comma"
        ),
        (
            #"{"network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "tx_rate_limiter": {"ops": {"size": 1, "refill_time": 10}}}], "x-swiftvmm": {"guest": "g"}}"#,
            "network-interfaces[eth0]: rate limiters are not supported"
        ),
        (
            #"{"boot-source": {"kernel_image_path": "k"}, "x-swiftvmm": {"guest": "g"}}"#,
            "x-swiftvmm.guest: cannot be given with boot-source"
        ),
        (#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 8}}"#, "boot-source: missing"),
        (#"{"boot-source": {"kernel_image_path": ""}}"#, "boot-source.kernel_image_path: the path is empty"),
        (
            #"{"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 8, "huge_pages": "2M"}}"#,
            "machine-config.huge_pages: '2M' is not one of 'None'"
        ),
    ])
    func whatTheSpecCannotHoldIsRefusedNamingTheResource(_ text: String, _ message: String) throws {
        let error = #expect(throws: APIFault.self) { try decode(text).machineSpec() }
        #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "")")
        #expect(error?.status == 400)
    }

    @Test(arguments: [
        (#"{"boot-source": {"kernel_image_path": "k", "extra": 1}}"#, "unknown field `boot-source.extra`"),
        (#"{"Boot-Source": {}}"#, "unknown field `Boot-Source`"),
        (#"{"x-swiftvmm": {"memory": "1G"}}"#, "unknown field `x-swiftvmm.memory`"),
        (
            #"{"drives": [{"drive_id": "a", "is_root_device": true, "path_on_host": "p", "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1, "burst": 1}}}]}"#,
            "unknown field `drives[0].rate_limiter.bandwidth.burst`"
        ),
        (#"{"machine-config": {"vcpu_count": 1.5, "mem_size_mib": 8}}"#, "invalid value"),
        (#"{"machine-config": null}"#, ""),
        (#"[]"#, "the body must be a JSON object"),
        (#"{"logger": {"level": 3}}"#, "invalid type for `logger.level`: expected a string"),
    ])
    func decodingIsStrictAndNamesTheField(_ text: String, _ message: String) throws {
        do {
            _ = try decode(text)
            #expect(message.isEmpty, "\(text) was accepted")
        } catch {
            #expect(!message.isEmpty && error.message.contains(message), "\(error.message)")
        }
    }

    @Test func faultsAreJSONWithTheMessageEscaped() {
        let fault = APIFault("a \"quoted\" \\ path\nnext\u{1}")
        #expect(fault.body == #"{"fault_message": "a \"quoted\" \\ path\nnext\u0001"}"#)
    }

    @Test func theStateMachineAnswersAsFirecrackerDoes() {
        #expect(throws: APIFault.notSupportedAfterStart) { try InstanceState.running.check(.preBoot) }
        #expect(throws: APIFault.notSupportedAfterStart) { try InstanceState.paused.check(.preBoot) }
        #expect(throws: APIFault.notSupportedBeforeStart) { try InstanceState.notStarted.check(.postBoot) }
        #expect(throws: Never.self) { try InstanceState.notStarted.check(.preBoot) }
        #expect(throws: Never.self) { try InstanceState.paused.check(.postBoot) }
        #expect(throws: Never.self) { try InstanceState.running.check(.any) }
    }

    @Test func routesMatchWithTheirIDs() {
        #expect(Route.match(method: "PUT", path: "/drives/rootfs")?.id == "rootfs")
        #expect(Route.match(method: "PUT", path: "/drives/rootfs")?.route == Route("PUT", "/drives/{drive_id}"))
        #expect(Route.match(method: "GET", path: "/")?.route == Route("GET", "/"))
        #expect(Route.match(method: "POST", path: "/") == nil)
        #expect(Route.match(method: "PUT", path: "/drives/a/b") == nil)
    }
}

import SystemPackage
import Testing
import VMCore

@testable import KVM

#if canImport(Glibc)
    import Glibc
#endif

/// These tests need /dev/kvm. It is present on every machine this project runs
/// on, so its absence is a failure with the reason, never a skip.
func openKVM() throws -> KVMSystem {
    do {
        return try KVMSystem()
    } catch {
        Issue.record("KVM is required for these tests: \(error)")
        throw error
    }
}

@Suite(.serialized) struct KVMSystemTests {
    @Test func speaksTheStableAPI() throws {
        let kvm = try openKVM()
        #expect(try kvm.apiVersion() == 12)
        #expect(kvm.vcpuMmapSize >= 4096)
        #expect(try kvm.checkExtension(.userMemory) > 0)
        #expect(try kvm.checkExtension(.immediateExit) > 0)
    }

    @Test func aMissingDeviceSaysWhatToDo() {
        #expect(throws: KVMError.failed(.open(path: "/nonexistent/kvm"), .noSuchFileOrDirectory)) {
            _ = try KVMSystem(path: "/nonexistent/kvm")
        }
        let message = KVMError.failed(.open(path: "/dev/kvm"), .permissionDenied).description
        #expect(message == "cannot open /dev/kvm: Permission denied (EACCES); add your user to the kvm group or run as root")
        #expect(
            KVMError.failed(.setUserMemoryRegion(slot: 0), .invalidArgument).description
                == "KVM_SET_USER_MEMORY_REGION (slot 0) failed: Invalid argument (EINVAL)")
    }

    @Test func aDeviceThatIsNotKVMIsRefused() {
        #expect(throws: KVMError.failed(.getAPIVersion, .inappropriateIOCTLForDevice)) { _ = try KVMSystem(path: "/dev/null") }
    }

    @Test func everyWrapperReportsItsOperationAndErrno() {
        // A descriptor that is certainly closed: each ioctl must fail with EBADF
        // and name itself, the way kvm-ioctls tests its faulty-fd paths.
        let system = KVMSystem(adopting: 100_000, vcpuMmapSize: 4096)
        #expect(throws: KVMError.failed(.getAPIVersion, .badFileDescriptor)) { _ = try system.apiVersion() }
        #expect(throws: KVMError.failed(.checkExtension(capability: KVMCapability.userMemory.rawValue), .badFileDescriptor)) {
            _ = try system.checkExtension(.userMemory)
        }
        #expect(throws: KVMError.failed(.createVM, .badFileDescriptor)) { _ = try system.createVM() }
        #expect(throws: KVMError.failed(.getSupportedCPUID, .badFileDescriptor)) { _ = try system.supportedCPUID() }
        let vm = KVMVirtualMachine(fd: 100_001, vcpuMmapSize: 4096)
        #expect(throws: KVMError.failed(.setUserMemoryRegion(slot: 3), .badFileDescriptor)) {
            try vm.setUserMemoryRegion(slot: 3, guestAddress: GuestAddress(0), size: 4096, hostAddress: 0)
        }
        #expect(throws: KVMError.failed(.createVCPU(id: 0), .badFileDescriptor)) { _ = try vm.createVCPU(id: 0) }
        #expect(throws: KVMError.failed(.setTSSAddress, .badFileDescriptor)) { try vm.setTSSAddress(GuestAddress(0xfffb_d000)) }
        #expect(throws: KVMError.failed(.createIRQChip, .badFileDescriptor)) { try vm.createIRQChip() }
        #expect(throws: KVMError.failed(.irqLine(irq: 4), .badFileDescriptor)) { try vm.setIRQLine(4, level: true) }
        #expect(throws: KVMError.failed(.setGSIRouting, .badFileDescriptor)) {
            try vm.setGSIRouting([IRQRoute(gsi: 0, chip: .ioapic, pin: 2)])
        }
        #expect(throws: KVMError.failed(.getMSRIndexList, .badFileDescriptor)) { _ = try system.msrIndexList() }
        #expect(throws: KVMError.failed(.getIRQChip(chip: 0), .badFileDescriptor)) { _ = try vm.saveState() }
        #expect(throws: KVMError.failed(.getPIT, .badFileDescriptor)) { _ = try vm.pitState() }
        #expect(throws: KVMError.failed(.getClock, .badFileDescriptor)) { _ = try vm.clock() }
        #expect(throws: KVMError.failed(.setClock, .badFileDescriptor)) { try vm.setClock(ClockState(clock: 0)) }
        #expect(throws: KVMError.failed(.setIRQChip(chip: 0), .badFileDescriptor)) {
            try vm.setIRQChipState(IRQChipState(masterPIC: PICState(), slavePIC: PICState(), ioapic: IOAPICState()))
        }
        #expect(throws: KVMError.failed(.setPIT, .badFileDescriptor)) { try vm.setPITState(PITState()) }
        #expect(
            throws: KVMError.failed(.checkExtension(capability: KVMCapability.manualDirtyLogProtect2.rawValue), .badFileDescriptor)
        ) { try vm.enableManualDirtyLogProtect() }
        #expect(
            KVMError.failed(.getDirtyLog(slot: 2), .noSuchFileOrDirectory).description
                == "KVM_GET_DIRTY_LOG (slot 2) failed: No such file or directory (ENOENT)")
        #expect(
            KVMError.stateSizeMismatch(field: "LAPIC register page", expected: 1024, actual: 1000, operation: .setLAPIC).description
                == "KVM_SET_LAPIC not attempted: LAPIC register page has 1000 elements where KVM takes 1024")
    }

    @Test func supportedCPUIDIncludesTheBasicLeaves() throws {
        let kvm = try openKVM()
        let leaves = try kvm.supportedCPUID()
        #expect(leaves.contains { $0.function == 0 })
        #expect(leaves.contains { $0.function == 0x8000_0000 })
    }

    @Test func tearingDownAVMReleasesEveryDescriptor() throws {
        // Other suites open descriptors concurrently, so rather than count them
        // all, check that each descriptor this VM owned no longer names a KVM object.
        var owned: [(fd: Int32, target: String)] = []
        for _ in 0..<20 {
            let kvm = try openKVM()
            let vm = try kvm.createVM()
            let vcpu = try vm.createVCPU(id: 0)
            owned += [(kvm.fd, linkTarget(kvm.fd)), (vm.fd, linkTarget(vm.fd)), (vcpu.fd, linkTarget(vcpu.fd))]
            #expect(linkTarget(vcpu.fd).contains("kvm-vcpu"))
        }
        for (fd, target) in owned.suffix(3) {
            #expect(linkTarget(fd) != target, "fd \(fd) (\(target)) is still open")
        }
    }
}

/// What /proc/self/fd/N points at, or "" for a closed descriptor.
func linkTarget(_ fd: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    let n = readlink("/proc/self/fd/\(fd)", &buffer, buffer.count - 1)
    return n < 0 ? "" : String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

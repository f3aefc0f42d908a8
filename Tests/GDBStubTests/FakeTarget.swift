import GDBStub
import VMCore

/// A `DebugTarget` made of plain data: two vCPUs, 64 KiB of memory from 0,
/// and a log of what the engine asked for.
final class FakeTarget: DebugTarget, @unchecked Sendable {
    // Unchecked: the tests use it from one thread.
    var vcpuCount = 2
    var registerFiles = [X86RegisterFile(), X86RegisterFile()]
    var memory = [UInt8](repeating: 0, count: 0x10000)
    var slots: [HardwareBreakpoint?] = []
    var planted: Set<UInt64> = []
    var resumed: [[GDBResumeAction?]] = []
    /// Read by a test while the stub's thread may call the target: behind a lock.
    private let counters = ThreadLock((interrupts: 0, detached: false))
    var interrupts: Int { counters.withLock { $0.interrupts } }
    var detached: Bool { counters.withLock { $0.detached } }
    var killed = false
    var onStop: (@Sendable (DebugStop) -> Void)?

    init() {
        registerFiles[0]["rip"] = 0x7c00
        registerFiles[1]["rip"] = 0xfff0
    }

    func attach(onStop: @escaping @Sendable (DebugStop) -> Void) -> DebugStop {
        self.onStop = onStop
        return DebugStop(vcpu: 0, reason: .step)
    }

    func registers(vcpu: Int) throws(DebugTargetError) -> X86RegisterFile { registerFiles[vcpu] }

    func setRegisters(_ registers: X86RegisterFile, vcpu: Int) throws(DebugTargetError) { registerFiles[vcpu] = registers }

    func readMemory(at address: UInt64, count: Int, vcpu: Int) throws(DebugTargetError) -> [UInt8] {
        guard address + UInt64(count) <= UInt64(memory.count) else { throw .unmappedAddress(address) }
        return Array(memory[Int(address)..<Int(address) + count])
    }

    func writeMemory(_ bytes: [UInt8], at address: UInt64, vcpu: Int) throws(DebugTargetError) {
        guard address + UInt64(bytes.count) <= UInt64(memory.count) else { throw .unmappedAddress(address) }
        memory.replaceSubrange(Int(address)..<Int(address) + bytes.count, with: bytes)
    }

    func setHardwareSlots(_ slots: [HardwareBreakpoint?]) throws(DebugTargetError) { self.slots = slots }

    func insertSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) { planted.insert(address) }

    func removeSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) { planted.remove(address) }

    func resume(_ actions: [GDBResumeAction?]) { resumed.append(actions) }

    func interrupt() {
        counters.withLock { $0.interrupts += 1 }
        onStop?(DebugStop(vcpu: 0, reason: .interrupted))
    }

    func detach() { counters.withLock { $0.detached = true } }

    func kill() { killed = true }
}

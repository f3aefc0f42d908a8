import GDBStub
import VMCore

/// Bytes as a debugger's connection would carry them, split into reads at
/// points the input chooses: every packet found is parsed and carried out by
/// the engine against an in-memory target, and never traps. A payload framed
/// by the encoder decodes back to itself.
func fuzzGDBPacket(_ bytes: [UInt8]) {
    var decoder = GDBPacketDecoder(maximumPayload: 0x4000)
    let engine = GDBEngine(target: FuzzDebugTarget(), onStop: { _ in })
    // The first byte picks the read size, as a socket would split the stream.
    let step = max(1, Int(bytes.first ?? 1))
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(bytes.count, index + step)]
        index += step
        for input in decoder.feed(chunk) {
            guard case .packet(let payload) = input else { continue }
            let command = GDBCommand(payload: payload)
            if case .resume = command {
                _ = engine.handle(command)
                _ = engine.stopped(DebugStop(vcpu: Int(payload.count % 2), reason: .slot(payload.count % 4)))
            } else {
                _ = engine.handle(command)
            }
        }
    }
    guard bytes.count <= 0x1000 else { return }
    var fresh = GDBPacketDecoder(maximumPayload: 0x4000)
    let framed = GDBPacketEncoder.frame(bytes)
    guard fresh.feed(framed) == [.packet(bytes)] else { fatalError("a framed payload did not decode back to itself: \(bytes)") }
}

/// Two vCPUs and 64 KiB of memory, all in plain arrays.
final class FuzzDebugTarget: DebugTarget, @unchecked Sendable {
    // Unchecked: one fuzz input at a time, on one thread.
    let vcpuCount = 2
    var files = [X86RegisterFile(), X86RegisterFile()]
    var memory = [UInt8](repeating: 0, count: 0x10000)

    func attach(onStop: @escaping @Sendable (DebugStop) -> Void) -> DebugStop { DebugStop(vcpu: 0, reason: .step) }
    func registers(vcpu: Int) throws(DebugTargetError) -> X86RegisterFile { files[vcpu] }
    func setRegisters(_ registers: X86RegisterFile, vcpu: Int) throws(DebugTargetError) { files[vcpu] = registers }
    func readMemory(at address: UInt64, count: Int, vcpu: Int) throws(DebugTargetError) -> [UInt8] {
        guard address <= UInt64(memory.count), UInt64(count) <= UInt64(memory.count) - address else { throw .unmappedAddress(address) }
        return Array(memory[Int(address)..<Int(address) + count])
    }
    func writeMemory(_ bytes: [UInt8], at address: UInt64, vcpu: Int) throws(DebugTargetError) {
        guard address <= UInt64(memory.count), UInt64(bytes.count) <= UInt64(memory.count) - address else {
            throw .unmappedAddress(address)
        }
        memory.replaceSubrange(Int(address)..<Int(address) + bytes.count, with: bytes)
    }
    func setHardwareSlots(_ slots: [HardwareBreakpoint?]) throws(DebugTargetError) {
        guard slots.count == GuestDebugConfiguration.slotCount else { fatalError("the engine set \(slots.count) slots") }
    }
    func insertSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) {}
    func removeSoftwareBreakpoint(at address: UInt64, vcpu: Int) throws(DebugTargetError) {}
    func resume(_ actions: [GDBResumeAction?]) {}
    func interrupt() {}
    func detach() {}
    func kill() {}
}

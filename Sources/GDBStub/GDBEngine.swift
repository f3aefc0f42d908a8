import VMCore

/// The remote protocol's logic: turns each parsed packet into calls on a
/// `DebugTarget` and a reply, and each stop into a stop reply.
///
/// It owns the breakpoint bookkeeping: the four debug-register slots are
/// shared by `Z1` breakpoints, `Z2`/`Z4` watchpoints and `Z0` breakpoints,
/// which take a free slot first (the guest's memory stays untouched, and
/// this works on hosts whose KVM does not report the guest's `int3`); once
/// the slots run out, and when a `Z1`-`Z4` needs a slot a `Z0` holds, a `Z0`
/// becomes an `int3` the target plants in guest memory. Used from one
/// thread (the stub's); no KVM here.
public final class GDBEngine {
    /// What fills a slot, and for which `Z` packet.
    struct Slot: Hashable {
        var kind: GDBBreakpointKind
        var breakpoint: HardwareBreakpoint
    }

    public let target: any DebugTarget
    /// `PacketSize`, the largest packet the stub accepts.
    public let packetSize: Int
    /// Whether the stub acknowledges packets (until `QStartNoAckMode`).
    public private(set) var acknowledges = true
    /// Whether the target runs (a stop reply is owed).
    public private(set) var running = false
    private var slots: [Slot?] = Array(repeating: nil, count: GuestDebugConfiguration.slotCount)
    /// `Z0` breakpoints the target planted as `int3`.
    private var planted: Set<UInt64> = []
    /// The `Hg` thread (vCPU index) for `g`, `p`, `m`; the `Hc` one for `s`.
    private var generalVCPU = 0
    private var continueVCPU: Int?
    private var lastStop: DebugStop

    /// `onStop` is handed to the target: it is called, from any thread, when the target stops after a resume.
    public init(target: any DebugTarget, packetSize: Int = 0x4000, onStop: @escaping @Sendable (DebugStop) -> Void) {
        self.target = target
        self.packetSize = packetSize
        lastStop = target.attach(onStop: onStop)
        generalVCPU = lastStop.vcpu
    }

    /// The stop reply for `stop`, which the target just reported.
    public func stopped(_ stop: DebugStop) -> [UInt8] {
        running = false
        lastStop = stop
        if stop.vcpu < target.vcpuCount { generalVCPU = stop.vcpu }
        return stopReply(stop)
    }

    func stopReply(_ stop: DebugStop) -> [UInt8] {
        let thread = "thread:\(String(stop.vcpu + 1, radix: 16));"
        switch stop.reason {
        case .step: return Array("T05\(thread)".utf8)
        case .softwareBreakpoint: return Array("T05\(thread)swbreak:;".utf8)
        case .interrupted: return Array("T02\(thread)".utf8)
        case .exited(let status): return Array("W\(String(format2: status))".utf8)
        case .terminated: return Array("X09".utf8)
        case .slot(let index):
            guard index < slots.count, let slot = slots[index] else { return Array("T05\(thread)".utf8) }
            switch slot.kind {
            case .software: return Array("T05\(thread)swbreak:;".utf8)
            case .hardware: return Array("T05\(thread)hwbreak:;".utf8)
            case .writeWatchpoint: return Array("T05\(thread)watch:\(String(slot.breakpoint.address, radix: 16));".utf8)
            case .readWatchpoint, .accessWatchpoint:
                return Array("T05\(thread)awatch:\(String(slot.breakpoint.address, radix: 16));".utf8)
            }
        }
    }

    /// Carries out `command` and says what to send.
    public func handle(_ command: GDBCommand) -> GDBResponse {
        if running {
            // All-stop: the debugger waits for the stop reply; anything else now is refused, not queued.
            return .reply(error(16))
        }
        switch command {
        case .querySupported:
            return .reply(
                Array(
                    "PacketSize=\(String(packetSize, radix: 16));qXfer:features:read+;swbreak+;hwbreak+;vContSupported+;QStartNoAckMode+"
                        .utf8))
        case .haltReason:
            return .reply(stopReply(lastStop))
        case .readRegisters:
            return result { () throws(DebugTargetError) in try target.registers(vcpu: generalVCPU).encoded() }
        case .writeRegisters(let bytes):
            return result { () throws(DebugTargetError) in
                var registers = try target.registers(vcpu: generalVCPU)
                let count = min(bytes.count, X86RegisterFile.totalSize)
                registers.bytes.replaceSubrange(0..<count, with: bytes.prefix(count))
                try target.setRegisters(registers, vcpu: generalVCPU)
                return ok
            }
        case .readRegister(let number):
            guard number < X86RegisterFile.layout.count else { return .reply(error(22)) }
            return result { () throws(DebugTargetError) in
                let registers = try target.registers(vcpu: generalVCPU)
                if X86RegisterFile.layout[number].isFloatingPoint, !registers.floatingPointAvailable {
                    return Array(repeating: UInt8(ascii: "x"), count: X86RegisterFile.layout[number].size * 2)
                }
                return GDBHex.encode(registers[number])
            }
        case .writeRegister(let number, let bytes):
            guard number < X86RegisterFile.layout.count, bytes.count == X86RegisterFile.layout[number].size else {
                return .reply(error(22))
            }
            return result { () throws(DebugTargetError) in
                var registers = try target.registers(vcpu: generalVCPU)
                registers[number] = bytes
                try target.setRegisters(registers, vcpu: generalVCPU)
                return ok
            }
        case .readMemory(let address, let length):
            return result { () throws(DebugTargetError) in
                GDBHex.encode(try target.readMemory(at: address, count: length, vcpu: generalVCPU))
            }
        case .writeMemory(let address, let data):
            if data.isEmpty { return .reply(ok) }
            return result { () throws(DebugTargetError) in
                try target.writeMemory(data, at: address, vcpu: generalVCPU)
                return ok
            }
        case .resume(let actions):
            return resume(actions)
        case .vContQuery:
            return .reply(Array("vCont;c;C;s;S".utf8))
        case .insertBreakpoint(let kind, let address, let length):
            return result { () throws(DebugTargetError) in
                try insert(kind, address: address, length: length)
                return ok
            }
        case .removeBreakpoint(let kind, let address, let length):
            return result { () throws(DebugTargetError) in
                try remove(kind, address: address, length: length)
                return ok
            }
        case .threadInfoFirst:
            return .reply(Array(("m" + (1...target.vcpuCount).map { String($0, radix: 16) }.joined(separator: ",")).utf8))
        case .threadInfoNext:
            return .reply(Array("l".utf8))
        case .currentThread:
            return .reply(Array("QC\(String(generalVCPU + 1, radix: 16))".utf8))
        case .setThread(let general, let thread):
            switch thread {
            case .thread(let n):
                guard (1...target.vcpuCount).contains(n) else { return .reply(error(22)) }
                if general { generalVCPU = n - 1 } else { continueVCPU = n - 1 }
            case .any, .all:
                if !general { continueVCPU = nil }
            }
            return .reply(ok)
        case .threadAlive(let thread):
            if case .thread(let n) = thread, (1...target.vcpuCount).contains(n) { return .reply(ok) }
            return .reply(error(22))
        case .attached:
            // The stub attached to a machine that already existed (detaching leaves it running).
            return .reply(Array("1".utf8))
        case .detach:
            clearBreakpoints()
            target.detach()
            return .replyAndClose(ok)
        case .kill:
            clearBreakpoints()
            target.kill()
            return .close
        case .startNoAckMode:
            acknowledges = false
            return .reply(ok)
        case .readFeatures(let annex, let offset, let length):
            guard annex == "target.xml" else { return .reply(error(0)) }
            let xml = Array(X86TargetDescription.xml.utf8)
            guard offset < xml.count else { return .reply([UInt8(ascii: "l")]) }
            let end = min(xml.count, offset + min(length, packetSize - 16))
            return .reply([UInt8(ascii: end == xml.count ? "l" : "m")] + xml[offset..<end])
        case .unsupported:
            return .reply([])
        case .malformed:
            return .reply(error(1))
        }
    }

    // MARK: Resuming

    private func resume(_ requested: [GDBResumeAction.PerThread]) -> GDBResponse {
        var actions = [GDBResumeAction?](repeating: nil, count: target.vcpuCount)
        // The leftmost action naming a thread wins; a default applies to the rest.
        for request in requested {
            switch request.thread {
            case .thread(let n)?:
                guard (1...target.vcpuCount).contains(n) else { return .reply(error(22)) }
                if actions[n - 1] == nil { actions[n - 1] = request.action }
            case .all?, .any?, nil:
                // A plain `s` steps the `Hc` thread (or the one that stopped) and lets the others run.
                if request.action == .step, requested.count == 1 {
                    let vcpu = continueVCPU ?? generalVCPU
                    actions[vcpu] = .step
                    for i in actions.indices where actions[i] == nil { actions[i] = .continue }
                } else {
                    for i in actions.indices where actions[i] == nil { actions[i] = request.action }
                }
            }
        }
        if lastStop.ended { return .reply(error(3)) }
        running = true
        target.resume(actions)
        return .resumed
    }

    // MARK: Breakpoints

    private func insert(_ kind: GDBBreakpointKind, address: UInt64, length: Int) throws(DebugTargetError) {
        switch kind {
        case .software:
            if planted.contains(address) || slots.contains(where: { $0?.kind == .software && $0?.breakpoint.address == address }) {
                return
            }
            if let free = slots.firstIndex(where: { $0 == nil }) {
                try setSlot(free, Slot(kind: .software, breakpoint: HardwareBreakpoint(address: address)))
            } else {
                try target.insertSoftwareBreakpoint(at: address, vcpu: generalVCPU)
                planted.insert(address)
            }
        case .hardware, .writeWatchpoint, .accessWatchpoint:
            let trigger: HardwareBreakpoint.Trigger = kind == .hardware ? .execute : kind == .writeWatchpoint ? .write : .readWrite
            let breakpoint = HardwareBreakpoint(address: address, trigger: trigger, length: kind == .hardware ? 1 : length)
            guard breakpoint.isValid else {
                throw .unsupported("x86 watches 1, 2, 4 or 8 bytes aligned to their length, not \(length) at \(address)")
            }
            if slots.contains(Slot(kind: kind, breakpoint: breakpoint)) { return }
            if let free = slots.firstIndex(where: { $0 == nil }) {
                try setSlot(free, Slot(kind: kind, breakpoint: breakpoint))
            } else if let borrowed = slots.firstIndex(where: { $0?.kind == .software }), let moved = slots[borrowed] {
                // A Z0 gives its slot up and becomes a planted int3.
                try target.insertSoftwareBreakpoint(at: moved.breakpoint.address, vcpu: generalVCPU)
                planted.insert(moved.breakpoint.address)
                try setSlot(borrowed, Slot(kind: kind, breakpoint: breakpoint))
            } else {
                throw .unsupported("all \(GuestDebugConfiguration.slotCount) debug-register slots are in use")
            }
        case .readWatchpoint:
            throw .unsupported("x86 debug registers cannot watch reads alone (use an access watchpoint)")
        }
    }

    private func remove(_ kind: GDBBreakpointKind, address: UInt64, length: Int) throws(DebugTargetError) {
        if kind == .software, planted.remove(address) != nil {
            try target.removeSoftwareBreakpoint(at: address, vcpu: generalVCPU)
            return
        }
        guard let index = slots.firstIndex(where: { $0?.kind == kind && $0?.breakpoint.address == address }) else { return }
        try setSlot(index, nil)
    }

    private func setSlot(_ index: Int, _ slot: Slot?) throws(DebugTargetError) {
        let old = slots[index]
        slots[index] = slot
        do { try target.setHardwareSlots(slots.map { $0?.breakpoint }) } catch {
            slots[index] = old
            throw error
        }
    }

    private func clearBreakpoints() {
        for address in planted { try? target.removeSoftwareBreakpoint(at: address, vcpu: generalVCPU) }
        planted.removeAll()
        slots = Array(repeating: nil, count: GuestDebugConfiguration.slotCount)
        try? target.setHardwareSlots(slots.map { $0?.breakpoint })
    }

    // MARK: Replies

    private var ok: [UInt8] { Array("OK".utf8) }

    private func error(_ code: UInt8) -> [UInt8] { [UInt8(ascii: "E")] + GDBHex.encode([code]) }

    private func result(_ body: () throws(DebugTargetError) -> [UInt8]) -> GDBResponse {
        do { return .reply(try body()) } catch { return .reply(self.error(error.code)) }
    }
}

extension String {
    /// Two lower-case hex digits.
    fileprivate init(format2 value: UInt8) { self = String(decoding: GDBHex.encode([value]), as: UTF8.self) }
}

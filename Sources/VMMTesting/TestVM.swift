import Devices
import Firmware
import GuestMemory
import Logging
import SwiftVMM
import VMCore

/// A virtual machine a test drives one VM exit at a time, on real
/// virtualization hardware.
///
/// ```swift
/// let vm = try TestVM(FirmwareImage.realHello)
/// try vm.run(untilOutputContains: "Hello")
/// let exit = try vm.run(until: .debugExit())
/// ```
///
/// An exit returned by `nextExit()` or `run(until:)` stays *pending* while the
/// test looks at it: the test may answer a pending read or hypercall (`answer(_:)`), change
/// registers or memory, and the next run call handles the exit the way the
/// machine would (unless the test answered it) before running the guest again.
/// Every exit is kept in `trace`, whose tail is part of every error.
///
/// Works the same from XCTest and Swift Testing: it only throws `VMTestError`.
public final class TestVM {
    /// The machine under test, for anything this API does not wrap.
    public let machine: Machine
    /// Everything the guest wrote to COM1 (since the fixture point, for a
    /// VM made by `TestVM(clone:)` or put back by `reset(to:)`).
    public let serialOutput: SerialBufferOutput
    public internal(set) var trace = ExitTrace()
    /// The deadline of each run call that is not given one.
    public var defaultTimeout: Duration = .seconds(10)

    var pending: VMExit?
    /// An exit already taken from KVM (while stepping over a breakpoint) that
    /// the next run call returns before running the guest again.
    var deferredExit: VMExit?
    var pendingAnswered = false
    var hypercallHandler: ((Hypercall) -> UInt64?)?
    /// Whether a failed guest assertion (hypercall 2) fails the run call that
    /// meets it with `.guestAssertionFailed`. On by default, handler or not;
    /// a test that checks the guest's assertions itself (in `hypercalls`, or
    /// in its `onHypercall` handler) turns it off.
    public var guestAssertionsFailTheRun = true
    /// Hypercalls seen so far, in order: those the test answered
    /// (`answer(_:)`), those a handler answered and those answered with 0.
    public internal(set) var hypercalls: [Hypercall] = []
    /// What the guest logged through the `log` hypercall.
    public internal(set) var guestLog: [String] = []
    /// Whether the test put scripted devices on the buses (`onPorts`,
    /// `onMMIO`, `attach`), which a reset does not take away.
    public internal(set) var hasScriptedDevices = false

    var debug = DebugState()

    // MARK: Making a VM

    /// Wraps `machine`, which this VM then drives (nothing else may run it).
    /// Its COM1 must write to a `SerialBufferOutput` — build it with
    /// `MachineIO(serialOutput: SerialBufferOutput())` or a configuration
    /// whose `serialOutput` is one — which becomes `serialOutput`, so that
    /// `serialText` and `run(untilOutputContains:)` work. This is how a
    /// clone (`Machine.clone(_:io:)`) or a restored machine becomes a `TestVM`.
    public init(machine: Machine) throws(VMTestError) {
        guard let buffer = machine.serialOutput as? SerialBufferOutput else {
            throw VMTestError(
                kind: .invalidRequest(
                    "TestVM(machine:) needs a machine whose COM1 writes to a SerialBufferOutput (MachineIO(serialOutput: SerialBufferOutput())); this one writes to \(type(of: machine.serialOutput))"
                ), rip: nil, traceTail: "")
        }
        self.machine = machine
        serialOutput = buffer
    }

    /// A VM running `guest` with `memory` bytes of RAM (default 16 MiB) and
    /// `vcpus` vCPUs on `platform` (default: the machine's choice, `.minimal`
    /// for one vCPU). The test drives vCPU 0; with more than one (which gives
    /// the VM the PC platform) the others run on threads of their own once the
    /// guest starts them, with the machine's default handling of their exits.
    ///
    /// `logger` gets what the machine logs (an access to a port no device
    /// claims, say); by default a `Logger` labelled `swiftvmm.testvm`, which
    /// goes wherever the process bootstrapped swift-log.
    public convenience init(
        _ guest: MachineConfiguration.Guest, memory: UInt64 = 16 << 20, vcpus: Int = 1, platform: MachineConfiguration.Platform? = nil,
        logger: Logger = TestVM.defaultLogger
    ) throws(VMTestError) {
        try self.init(
            configuration: MachineConfiguration(guest: guest, memorySize: memory, logger: logger, platform: platform, vcpuCount: vcpus))
    }

    /// A VM built from any machine configuration: its guest, RAM, platform,
    /// vCPUs, hidden CPU features, COM2 and debug-console outputs, and logger.
    /// COM1 must write to a `SerialBufferOutput` (which becomes
    /// `serialOutput`) or be left nil, and then gets a new one.
    public convenience init(configuration: MachineConfiguration) throws(VMTestError) {
        var configuration = configuration
        if configuration.serialOutput == nil { configuration.serialOutput = SerialBufferOutput() }
        let machine: Machine
        do { machine = try Machine(configuration) } catch {
            throw VMTestError(kind: .machine(error.description), rip: nil, traceTail: "")
        }
        try self.init(machine: machine)
    }

    /// A VM running a guest from `firmware/` or a test target's `Guests/`.
    public convenience init(
        _ firmware: FirmwareImage, memory: UInt64 = 16 << 20, vcpus: Int = 1, platform: MachineConfiguration.Platform? = nil,
        logger: Logger = TestVM.defaultLogger
    ) throws(VMTestError) {
        try self.init(.firmware(firmware), memory: memory, vcpus: vcpus, platform: platform, logger: logger)
    }

    /// The logger of a `TestVM` made without one.
    public static var defaultLogger: Logger { Logger(label: "swiftvmm.testvm") }

    /// A VM running raw machine code loaded at `loadAddress` (default 0x7c00 in
    /// real mode, 1 MiB otherwise) and entered there in `mode`.
    public convenience init(code: [UInt8], mode: CPUMode = .real, loadAddress: UInt64? = nil, memory: UInt64 = 16 << 20)
        throws(VMTestError)
    {
        try self.init(.flat(bytes: code, mode: mode, loadAddress: loadAddress), memory: memory)
    }

    /// A VM running an ELF64 executable given as bytes.
    public convenience init(elf: [UInt8], memory: UInt64 = 16 << 20) throws(VMTestError) {
        try self.init(.elf(bytes: elf), memory: memory)
    }

    /// A VM running the ELF64 executable at `path`.
    public convenience init(elfFile path: String, memory: UInt64 = 16 << 20) throws(VMTestError) {
        let bytes: [UInt8]
        do { bytes = try GuestFile.read(path) } catch {
            throw VMTestError(kind: .invalidRequest("\(path): \(error)"), rip: nil, traceTail: "")
        }
        try self.init(.elf(bytes: bytes), memory: memory)
    }

    // MARK: Running

    /// The exit the guest is stopped at, if the test has not let it go on yet.
    public var pendingExit: VMExit? { pending }

    /// Handles the pending exit, runs the guest until its next exit and returns it (now pending).
    @discardableResult
    public func nextExit(timeout: Duration? = nil) throws(VMTestError) -> VMExit {
        try withDeadline(timeout, waitingFor: "the next exit") { () throws(VMTestError) -> VMExit in
            _ = try settlePending()
            return try runOnce(waitingFor: "the next exit")
        }
    }

    /// Runs the guest, handling every exit as the machine would, until one
    /// matches `predicate`; returns it (pending). Throws if the machine stops
    /// first or the deadline passes.
    @discardableResult
    public func run(until predicate: ExitPredicate, timeout: Duration? = nil) throws(VMTestError) -> VMExit {
        let awaited = predicate.description
        return try withDeadline(timeout, waitingFor: awaited) { () throws(VMTestError) -> VMExit in
            if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            while true {
                let exit = try runOnce(waitingFor: awaited)
                if predicate.matches(exit) { return exit }
                if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            }
        }
    }

    /// Runs the guest until the machine stops, handling every exit as the
    /// machine would, and returns why it stopped. A `done` hypercall stops it
    /// as `.debugExit(status:)` with the status the guest gave.
    @discardableResult
    public func runToCompletion(timeout: Duration? = nil) throws(VMTestError) -> StopReason {
        try withDeadline(timeout, waitingFor: "the guest to stop") { () throws(VMTestError) -> StopReason in
            if let reason = try settlePending() { return reason }
            while true {
                _ = try runOnce(waitingFor: "the guest to stop")
                if let reason = try settlePending() { return reason }
            }
        }
    }

    /// Runs until the guest's COM1 output contains `text`.
    public func run(untilOutputContains text: String, timeout: Duration? = nil) throws(VMTestError) {
        let awaited = "serial output containing \"\(text)\""
        try withDeadline(timeout, waitingFor: awaited) { () throws(VMTestError) in
            if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            while !serialText.contains(text) {
                _ = try runOnce(waitingFor: awaited)
                if let reason = try settlePending() {
                    if serialText.contains(text) { return }
                    throw error(.stoppedBeforeMatch(reason, waitingFor: awaited))
                }
            }
        }
    }

    /// Runs until the guest makes a hypercall and returns it decoded. The call
    /// stays pending: `answer(_:)` sets its result, else it gets the handler's (or 0).
    public func runUntilHypercall(timeout: Duration? = nil) throws(VMTestError) -> Hypercall {
        let exit = try run(until: .hypercall, timeout: timeout)
        return try decodeHypercall(exit)
    }

    /// Runs until the guest syncs (`GUEST_SYNC stage` / `swiftvmm_sync(stage)`,
    /// hypercall 4) and checks that it synced at `stage`: a test awaits the
    /// stages in the order the guest reaches them. Other hypercalls on the
    /// way are handled as usual (a failed guest assertion throws). The sync
    /// stays pending, so the test looks at the guest where it stopped, and
    /// may `answer(_:)` it.
    public func awaitSync(_ stage: UInt64, timeout: Duration? = nil) throws(VMTestError) {
        let awaited = "the guest's sync at stage \(stage)"
        try withDeadline(timeout, waitingFor: awaited) { () throws(VMTestError) in
            if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            while true {
                let exit = try runOnce(waitingFor: awaited)
                if ExitPredicate.hypercall.matches(exit), case .sync(let got) = try decodeHypercall(exit) {
                    if got == stage { return }
                    throw error(.unexpectedSync(expected: stage, got: got))
                }
                if let reason = try settlePending() { throw error(.stoppedBeforeMatch(reason, waitingFor: awaited)) }
            }
        }
    }

    // MARK: While stopped

    /// Handles the pending exit now, as the next run call would (devices see
    /// the access, reads are answered), without running the guest further.
    /// Returns why the machine must stop, if the exit says so.
    @discardableResult
    public func handlePendingExit() throws(VMTestError) -> StopReason? {
        try settlePending()
    }

    /// Answers what the guest is waiting for: the pending `IN` or MMIO read
    /// with `value` (its low bytes, as many as the read wants), or the
    /// pending hypercall with `value` as its result (RAX).
    public func answer(_ value: UInt64) throws(VMTestError) {
        if let exit = pending, ExitPredicate.hypercall.matches(exit) {
            try modifyRegisters { $0.rax = value }
            pendingAnswered = true
            trace.annotateLast("answered by the test with \(hex(value))")
            return
        }
        switch pending {
        case .ioIn(_, let size, let count):
            let total = Int(size) * Int(count)
            let data =
                total <= 8
                ? IOData(value: value, size: total)
                : IOData(bytes: (0..<total).map { UInt8(truncatingIfNeeded: value >> (UInt64($0 % 8) * 8)) })
            answer(data)
        case .mmioRead(_, let size):
            answer(IOData(value: value, size: Int(size)))
        default:
            throw error(
                .noPendingRead(
                    "answer(\(hex(value))) needs a pending IN, MMIO read or hypercall; the pending exit is \(pending.map { ExitTrace.describe($0) } ?? "none")"
                ))
        }
    }

    /// Answers the pending read with exactly these bytes.
    public func answer(bytes: [UInt8]) throws(VMTestError) {
        switch pending {
        case .ioIn, .mmioRead: answer(IOData(bytes: bytes))
        default: throw error(.noPendingRead("answer(bytes:) needs a pending IN or MMIO read"))
        }
    }

    private func answer(_ data: IOData) {
        machine.completeRead(data)
        pendingAnswered = true
        trace.annotateLast("answered by the test with \(data)")
    }

    /// Sets the result (RAX) of the pending hypercall: the old name of `answer(_:)`.
    @available(*, deprecated, renamed: "answer(_:)")
    public func respond(_ result: UInt64) throws(VMTestError) {
        guard let exit = pending, ExitPredicate.hypercall.matches(exit) else {
            throw error(.invalidRequest("respond(_:) needs a pending hypercall"))
        }
        try answer(result)
    }

    // MARK: Registers and memory

    public func registers() throws(VMTestError) -> Registers {
        do { return try machine.registers() } catch { throw self.error(.machine(error.description)) }
    }

    public func setRegisters(_ registers: Registers) throws(VMTestError) {
        do { try machine.setRegisters(registers) } catch { throw self.error(.machine(error.description)) }
    }

    /// Reads the registers, lets `change` edit them, writes them back.
    public func modifyRegisters(_ change: (inout Registers) -> Void) throws(VMTestError) {
        var registers = try registers()
        change(&registers)
        try setRegisters(registers)
    }

    public func specialRegisters() throws(VMTestError) -> SpecialRegisters {
        do { return try machine.specialRegisters() } catch { throw self.error(.machine(error.description)) }
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(VMTestError) {
        do { try machine.setSpecialRegisters(registers) } catch { throw self.error(.machine(error.description)) }
    }

    public func msrs(_ indices: [UInt32]) throws(VMTestError) -> [UInt32: UInt64] {
        do { return try machine.msrs(indices) } catch { throw self.error(.machine(error.description)) }
    }

    public func setMSRs(_ msrs: [(index: UInt32, value: UInt64)]) throws(VMTestError) {
        do { try machine.setMSRs(msrs) } catch { throw self.error(.machine(error.description)) }
    }

    /// `count` bytes of guest memory at guest-physical `address`.
    public func read(count: Int, at address: UInt64) throws(VMTestError) -> [UInt8] {
        do { return try machine.memory.read(count: count, at: GuestAddress(address)) } catch { throw self.error(.memory(error)) }
    }

    public func write(_ bytes: [UInt8], at address: UInt64) throws(VMTestError) {
        do { try machine.memory.write(bytes, at: GuestAddress(address)) } catch { throw self.error(.memory(error)) }
    }

    /// A little-endian integer of guest memory.
    public func readInteger<T: FixedWidthInteger>(at address: UInt64, as type: T.Type = T.self) throws(VMTestError) -> T {
        do { return try machine.memory.readInteger(at: GuestAddress(address), as: type) } catch { throw self.error(.memory(error)) }
    }

    public func writeInteger<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(VMTestError) {
        do { try machine.memory.writeInteger(value, at: GuestAddress(address)) } catch { throw self.error(.memory(error)) }
    }

    // MARK: Serial console

    /// Everything the guest wrote to COM1, as bytes.
    public var serialBytes: [UInt8] { serialOutput.bytes }
    /// Everything the guest wrote to COM1, as text (invalid UTF-8 replaced).
    public var serialText: String { serialOutput.text }

    /// Puts `text` in COM1's receive FIFO (at most 64 bytes are waiting at a
    /// time, as on a real 16550A); returns how many bytes were accepted.
    @discardableResult
    public func typeSerial(_ text: String) -> Int {
        machine.serial.enqueueInput(Array(text.utf8))
    }

    // MARK: Scripted devices

    /// Puts `handler` on `ports` for the VM's lifetime, replacing any device
    /// there (e.g. a fake UART at COM1). It gets every access; what it returns
    /// answers reads (`nil` reads as all ones). Other ports keep their devices.
    public func onPorts(_ ports: ClosedRange<UInt16>, _ handler: @escaping (PortAccess) -> UInt64?) throws(VMTestError) {
        try attach(ScriptedPortDevice(base: ports.lowerBound, handler: handler), ports: ports)
    }

    /// Puts `handler` on the guest-physical range `range` (which must not be RAM).
    public func onMMIO(_ range: Range<UInt64>, _ handler: @escaping (MMIOAccess) -> UInt64?) throws(VMTestError) {
        guard !range.isEmpty else { throw error(.invalidRequest("cannot script an empty MMIO range")) }
        let length = range.upperBound - range.lowerBound
        if machine.memory.contains(GuestAddress(range.lowerBound), length: 1) {
            throw error(.invalidRequest("[\(hex(range.lowerBound)), \(hex(range.upperBound))) is guest RAM; KVM never exits for it"))
        }
        hasScriptedDevices = true
        machine.mmio.unregister(overlapping: GuestAddress(range.lowerBound), length: length)
        do {
            try machine.mmio.register(
                ScriptedMMIODevice(base: range.lowerBound, handler: handler), at: GuestAddress(range.lowerBound), length: length)
        } catch { throw self.error(.invalidRequest("cannot script MMIO \(range): \(error)")) }
    }

    /// Puts a device object on `ports`, replacing whatever is there.
    public func attach(_ device: any PortIODevice, ports: ClosedRange<UInt16>) throws(VMTestError) {
        // A length is a UInt16, so all 65536 ports (0...0xffff) become 0...0xfffe.
        let count = Int(ports.upperBound) - Int(ports.lowerBound) + 1
        let length = UInt16(min(count, Int(UInt16.max)))
        hasScriptedDevices = true
        machine.ports.unregister(overlapping: ports.lowerBound, length: length)
        do { try machine.ports.register(device, at: ports.lowerBound, length: length) } catch {
            throw self.error(.invalidRequest("cannot put a device on ports \(ports): \(error)"))
        }
    }

    // MARK: Hypercalls

    /// Answers every hypercall the test does not answer itself: the returned
    /// value becomes the guest's RAX (`nil`: 0). A failed guest assertion
    /// still fails the run unless `guestAssertionsFailTheRun` is off.
    public func onHypercall(_ handler: @escaping (Hypercall) -> UInt64?) {
        hypercallHandler = handler
    }

    /// Decodes a hypercall exit using the guest's registers (and memory, for `log`).
    public func decodeHypercall(_ exit: VMExit) throws(VMTestError) -> Hypercall {
        guard case .ioOut(Hypercall.port, _, _, let data) = exit else {
            throw error(.invalidRequest("\(exit) is not a hypercall"))
        }
        let r = try registers()
        let number = UInt32(truncatingIfNeeded: data.value)
        switch number {
        case Hypercall.Number.done: return .done(status: r.rdi)
        case Hypercall.Number.progress: return .progress(r.rdi)
        case Hypercall.Number.assertionFailed:
            var assertion = GuestAssertion(line: r.rdi, expected: r.rsi, actual: r.rbx)
            if r.rcx != 0 {
                let strings = guestStrings(at: r.rcx, count: 2)
                assertion.file = strings.first
                assertion.message = strings.count > 1 ? strings[1] : nil
            }
            return .assertionFailed(assertion)
        case Hypercall.Number.sync: return .sync(r.rdi)
        case Hypercall.Number.log:
            let length = min(r.rsi, Hypercall.maximumLogLength)
            let bytes = (try? machine.memory.read(count: Int(length), at: GuestAddress(r.rdi))) ?? Array("<log outside guest RAM>".utf8)
            return .log(String(decoding: bytes, as: UTF8.self))
        default: return .request(number: number, arguments: [r.rdi, r.rsi, r.rbx, r.rcx])
        }
    }

    /// Up to `count` NUL-terminated strings one after the other at
    /// guest-physical `address` (each cut at 256 bytes); fewer where guest RAM ends.
    private func guestStrings(at address: UInt64, count: Int) -> [String] {
        var strings: [String] = []
        var next = address
        for _ in 0..<count {
            var bytes: [UInt8] = []
            while bytes.count < 256, let byte = try? machine.memory.read(count: 1, at: GuestAddress(next &+ UInt64(bytes.count))).first,
                byte != 0
            {
                bytes.append(byte)
            }
            if bytes.count == 256 { break }
            strings.append(String(decoding: bytes, as: UTF8.self))
            next = next &+ UInt64(bytes.count) &+ 1
        }
        return strings
    }

    // MARK: Internals

    func runOnce(waitingFor awaited: String) throws(VMTestError) -> VMExit {
        let exit: VMExit
        if let deferred = deferredExit {
            deferredExit = nil
            exit = deferred
        } else {
            exit = try nextExitWatching()
        }
        if exit == .interrupted, machine.deadlineHasExpired {
            throw error(.timeout(currentTimeout, waitingFor: awaited))
        }
        if let failure = try softwareBreakpointFailure(exit) { throw failure }
        trace.append(exit)
        pending = exit
        pendingAnswered = false
        return exit
    }

    /// Handles the pending exit the way the machine would, unless the test
    /// answered it; returns the reason the machine must stop, if any.
    func settlePending() throws(VMTestError) -> StopReason? {
        guard let exit = pending else { return nil }
        pending = nil
        if ExitPredicate.hypercall.matches(exit) { return try handleHypercall(exit, answered: pendingAnswered) }
        if pendingAnswered { return nil }
        if case .debug(let info) = exit { return try resumeFromDebugExit(info) }
        do {
            let reason = try machine.dispatch(exit)
            if let reason { trace.annotateLast("machine stops: \(reason)") }
            return reason
        } catch { throw self.error(.machine(error.description)) }
    }

    /// Records the hypercall and gives it its result (unless the test
    /// `answered` it already), then does what the call asks of the test.
    private func handleHypercall(_ exit: VMExit, answered: Bool) throws(VMTestError) -> StopReason? {
        let call = try decodeHypercall(exit)
        hypercalls.append(call)
        if answered {
            trace.annotateLast("\(call), answered by the test")
        } else {
            let result = hypercallHandler?(call) ?? 0
            try modifyRegisters { $0.rax = result }
            trace.annotateLast("\(call), result \(hex(result))")
        }
        switch call {
        case .done(let status): return .debugExit(status: UInt32(truncatingIfNeeded: status))
        case .assertionFailed(let assertion) where guestAssertionsFailTheRun:
            throw error(.guestAssertionFailed(assertion))
        case .log(let text):
            guestLog.append(text)
            return nil
        default: return nil
        }
    }

    var currentTimeout: Duration = .seconds(10)

    func withDeadline<R>(_ timeout: Duration?, waitingFor awaited: String, _ body: () throws(VMTestError) -> R) throws(VMTestError)
        -> R
    {
        currentTimeout = timeout ?? defaultTimeout
        return try machine.withDeadline(currentTimeout, body)
    }

    /// An error of `kind` with the guest's RIP and the trace tail attached.
    func error(_ kind: VMTestError.Kind) -> VMTestError {
        VMTestError(kind: kind, rip: try? machine.registers().rip, traceTail: trace.tail())
    }
}

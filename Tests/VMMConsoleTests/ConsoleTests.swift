import Synchronization
import Testing

@testable import VMMConsole

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - ConsoleEscape

@Suite struct ConsoleEscapeTests {
    static let ctrlA: UInt8 = 0x01

    @Test func ordinaryBytesPassThrough() {
        var escape = ConsoleEscape()
        let bytes = Array("hello\r\u{03}\u{04}\u{1b}[A".utf8)
        #expect(escape.process(bytes) == ConsoleEscape.Output(bytes: bytes))
        #expect(!escape.awaitingCommand)
    }

    @Test func ctrlAXQuits() {
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA, UInt8(ascii: "x")]) == ConsoleEscape.Output(actions: [.quit]))
        #expect(!escape.awaitingCommand)
    }

    @Test(arguments: ["h", "?"])
    func ctrlAHShowsHelp(command: Character) throws {
        var escape = ConsoleEscape()
        let byte = try #require(command.asciiValue)
        #expect(
            escape.process([UInt8(ascii: "a"), Self.ctrlA, byte, UInt8(ascii: "b")]) == .init(bytes: Array("ab".utf8), actions: [.help]))
    }

    @Test func doubleCtrlASendsOne() {
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA, Self.ctrlA]) == .init(bytes: [Self.ctrlA]))
        #expect(!escape.awaitingCommand)
    }

    @Test func tripleCtrlAThenXSendsOneAndQuits() {
        // The second Ctrl-A completes the first; the third starts a new command.
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA, Self.ctrlA, Self.ctrlA, UInt8(ascii: "x")]) == .init(bytes: [Self.ctrlA], actions: [.quit]))
    }

    @Test func ctrlAPPausesAndCtrlASSnapshots() {
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA, UInt8(ascii: "p")]) == .init(actions: [.pause]))
        #expect(
            escape.process([UInt8(ascii: "a"), Self.ctrlA, UInt8(ascii: "s"), UInt8(ascii: "b")])
                == .init(bytes: Array("ab".utf8), actions: [.snapshot]))
        // Pause twice is resume: the state machine only reports, the caller toggles.
        #expect(escape.process([Self.ctrlA, UInt8(ascii: "p"), Self.ctrlA, UInt8(ascii: "p")]) == .init(actions: [.pause, .pause]))
        #expect(!escape.awaitingCommand)
    }

    @Test(arguments: [(UInt8(ascii: "p"), ConsoleEscape.Action.pause), (UInt8(ascii: "s"), .snapshot)])
    func pauseAndSnapshotSplitAcrossChunks(byte: UInt8, action: ConsoleEscape.Action) {
        var escape = ConsoleEscape()
        #expect(escape.process([UInt8(ascii: "1"), Self.ctrlA]) == .init(bytes: [UInt8(ascii: "1")]))
        #expect(escape.awaitingCommand)
        #expect(escape.process([byte, UInt8(ascii: "2")]) == .init(bytes: [UInt8(ascii: "2")], actions: [action]))
        #expect(!escape.awaitingCommand)
    }

    @Test(arguments: ["a", "b", "c", "t", "P", "S", "X", "H", "\r", "\u{00}", "\u{7f}"])
    func unknownCommandPassesBothBytes(command: Character) throws {
        var escape = ConsoleEscape()
        let byte = try #require(command.asciiValue)
        #expect(
            escape.process([UInt8(ascii: "1"), Self.ctrlA, byte, UInt8(ascii: "2")])
                == .init(bytes: [UInt8(ascii: "1"), Self.ctrlA, byte, UInt8(ascii: "2")]))
        #expect(!escape.awaitingCommand)
    }

    @Test func prefixSplitAcrossChunks() {
        var escape = ConsoleEscape()
        #expect(escape.process(Array("ab".utf8) + [Self.ctrlA]) == .init(bytes: Array("ab".utf8)))
        #expect(escape.awaitingCommand)
        #expect(escape.process([]) == .init())
        #expect(escape.awaitingCommand, "an empty read changes nothing")
        #expect(escape.process(Array("xyz".utf8)) == .init(bytes: Array("yz".utf8), actions: [.quit]))
        #expect(!escape.awaitingCommand)
    }

    @Test func doubleCtrlASplitAcrossChunks() {
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA]) == .init())
        #expect(escape.process([Self.ctrlA]) == .init(bytes: [Self.ctrlA]))
        #expect(!escape.awaitingCommand)
    }

    @Test func passThroughSplitAcrossChunks() {
        var escape = ConsoleEscape()
        #expect(escape.process([Self.ctrlA]) == .init())
        #expect(escape.process(Array("q!".utf8)) == .init(bytes: [Self.ctrlA] + Array("q!".utf8)))
    }

    @Test func helpSplitAcrossChunks() {
        var escape = ConsoleEscape()
        #expect(escape.process([UInt8(ascii: "a"), Self.ctrlA]) == .init(bytes: [UInt8(ascii: "a")]))
        #expect(escape.process([UInt8(ascii: "h")]) == .init(actions: [.help]))
    }

    @Test func actionsComeInOrder() {
        var escape = ConsoleEscape()
        let input: [UInt8] = [
            Self.ctrlA, UInt8(ascii: "h"), UInt8(ascii: "k"), Self.ctrlA, UInt8(ascii: "x"), Self.ctrlA, UInt8(ascii: "?"),
        ]
        #expect(escape.process(input) == .init(bytes: [UInt8(ascii: "k")], actions: [.help, .quit, .help]))
    }

    @Test func finishForwardsAPendingPrefix() {
        var escape = ConsoleEscape()
        #expect(escape.finish() == [])
        _ = escape.process([UInt8(ascii: "a"), Self.ctrlA])
        #expect(escape.finish() == [Self.ctrlA])
        #expect(!escape.awaitingCommand)
        #expect(escape.finish() == [])
    }

    /// Every way of cutting the input into chunks gives the same result as
    /// one chunk: the state carried between chunks is complete.
    @Test func chunkingDoesNotMatter() {
        let input: [UInt8] = [
            UInt8(ascii: "a"), Self.ctrlA, Self.ctrlA, Self.ctrlA, UInt8(ascii: "h"), Self.ctrlA, UInt8(ascii: "b"), UInt8(ascii: "c"),
            Self.ctrlA, UInt8(ascii: "x"), Self.ctrlA, Self.ctrlA, Self.ctrlA,
        ]
        var whole = ConsoleEscape()
        var expected = whole.process(input)
        expected.bytes += whole.finish()
        // Each of the 2^(n-1) cut patterns, a bit per gap between bytes.
        for cuts in 0..<(1 << (input.count - 1)) {
            var escape = ConsoleEscape()
            var combined = ConsoleEscape.Output()
            var start = 0
            for end in 1...input.count where end == input.count || cuts & (1 << (end - 1)) != 0 {
                let output = escape.process(input[start..<end])
                combined.bytes += output.bytes
                combined.actions += output.actions
                start = end
            }
            combined.bytes += escape.finish()
            #expect(combined == expected, "cuts \(String(cuts, radix: 2))")
            if combined != expected { return }
        }
    }

    @Test func helpTextNamesTheCommandsWithCRLF() {
        let text = ConsoleEscape.helpText
        #expect(text.contains("C-a x"))
        #expect(text.contains("C-a h"))
        #expect(text.contains("C-a C-a"))
        #expect(text.contains("C-a p"))
        #expect(text.contains("C-a s"))
        let bytes = Array(text.utf8)
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            #expect(index > 0 && bytes[index - 1] == UInt8(ascii: "\r"), "every LF follows a CR, for a raw terminal")
        }
        #expect(text.hasSuffix("\r\n"))
    }
}

// MARK: - Helpers

/// Polls `condition` every millisecond until it holds or `timeout` passes, so
/// that no test can hang.
private func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return condition()
}

/// Takes input until `count` bytes have come or `timeout` passes.
private func collect(_ count: Int, from input: ConsoleInput, max: Int = 4096, timeout: Duration = .seconds(5)) async -> [UInt8] {
    var bytes: [UInt8] = []
    _ = await eventually(timeout: timeout) {
        bytes += input.takeInput(max: max)
        return bytes.count >= count
    }
    return bytes
}

/// A pipe whose ends close when it goes away (or `closeWriteEnd()` is called).
private final class TestPipe {
    let readEnd: Int32
    private(set) var writeEnd: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(readEnd)
        if writeEnd >= 0 { close(writeEnd) }
    }

    func write(_ bytes: [UInt8]) throws {
        let written = bytes.withUnsafeBytes { Glibc.write(writeEnd, $0.baseAddress, $0.count) }
        try #require(written == bytes.count)
    }

    func write(_ text: String) throws { try write(Array(text.utf8)) }

    func closeWriteEnd() {
        close(writeEnd)
        writeEnd = -1
    }
}

/// What the callbacks saw, from the reader thread.
private final class CallbackCounts: Sendable {
    let input = Atomic<Int>(0)
    let quit = Atomic<Int>(0)
    let help = Atomic<Int>(0)
    let pause = Atomic<Int>(0)
    let snapshot = Atomic<Int>(0)
    let endOfInput = Atomic<Int>(0)

    func start(_ fd: Int32, mode: ConsoleInput.Mode, capacity: Int = ConsoleInput.defaultCapacity) throws -> ConsoleInput {
        try ConsoleInput(
            fileDescriptor: fd, mode: mode, capacity: capacity,
            onInput: { self.input.add(1, ordering: .relaxed) }, onQuit: { self.quit.add(1, ordering: .relaxed) },
            onHelp: { self.help.add(1, ordering: .relaxed) }, onPause: { self.pause.add(1, ordering: .relaxed) },
            onSnapshot: { self.snapshot.add(1, ordering: .relaxed) }, onEndOfInput: { self.endOfInput.add(1, ordering: .relaxed) })
    }
}

// MARK: - ConsoleInput

@Suite struct ConsoleInputTests {
    @Test func passthroughDeliversEveryByteUnchanged() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .passthrough)
        defer { input.stop() }
        let sent: [UInt8] = Array("boot\n".utf8) + [0x01, UInt8(ascii: "x"), 0x01, 0x01, 0x03, 0x00, 0xff]
        try pipe.write(sent)
        #expect(await collect(sent.count, from: input) == sent)
        #expect(counts.input.load(ordering: .relaxed) >= 1)
        #expect(counts.quit.load(ordering: .relaxed) == 0, "no escape commands from a pipe")
        #expect(!input.inputHasEnded)
    }

    @Test func takeInputIsNonBlockingAndRespectsMax() async throws {
        let pipe = try TestPipe()
        let input = try ConsoleInput(fileDescriptor: pipe.readEnd, mode: .passthrough)
        defer { input.stop() }
        #expect(input.takeInput(max: 10) == [])
        #expect(!input.hasPendingInput)
        try pipe.write("abcdefgh")
        // One write to a pipe is one read and one enqueue: once any byte is
        // queued, all eight are.
        #expect(await eventually { input.hasPendingInput })
        #expect(input.takeInput(max: 0) == [])
        #expect(input.takeInput(max: 3) == Array("abc".utf8))
        #expect(input.takeInput(max: 3) == Array("def".utf8))
        #expect(input.takeInput(max: 3) == Array("gh".utf8))
        #expect(input.takeInput(max: 3) == [])
        #expect(!input.hasPendingInput)
    }

    @Test func endOfInputIsReportedAndQueuedBytesStay() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .passthrough)
        defer { input.stop() }
        try pipe.write("last words")
        pipe.closeWriteEnd()
        #expect(await eventually { input.inputHasEnded })
        #expect(counts.endOfInput.load(ordering: .relaxed) == 1)
        #expect(input.takeInput(max: 100) == Array("last words".utf8))
    }

    @Test func waitForInputWakesOnBytesAndOnTheEnd() async throws {
        let pipe = try TestPipe()
        let input = try ConsoleInput(fileDescriptor: pipe.readEnd, mode: .passthrough)
        defer { input.stop() }
        let clock = ContinuousClock()
        var waited = false
        let quiet = clock.measure { waited = input.waitForInput(timeout: .milliseconds(30)) }
        #expect(!waited)
        #expect(quiet >= .milliseconds(30) && quiet < .seconds(5))

        try pipe.write("k")
        let typed = clock.measure { waited = input.waitForInput(timeout: .seconds(5)) }
        #expect(waited)
        #expect(typed < .seconds(4))
        #expect(input.waitForInput(timeout: .zero), "queued bytes answer at once")
        #expect(input.takeInput(max: 10) == Array("k".utf8))

        pipe.closeWriteEnd()
        let ended = clock.measure { waited = input.waitForInput(timeout: .seconds(5)) }
        #expect(!waited)
        #expect(ended < .seconds(4), "the end of input wakes the waiter")
        #expect(input.inputHasEnded)
    }

    @Test func stopReturnsPromptlyWhileTheReaderIsBlocked() async throws {
        let pipe = try TestPipe()
        let input = try ConsoleInput(fileDescriptor: pipe.readEnd, mode: .terminal)
        // Let the reader get into poll().
        try await Task.sleep(for: .milliseconds(50))
        let clock = ContinuousClock()
        let elapsed = clock.measure { input.stop() }
        #expect(elapsed < .seconds(1))
        #expect(input.inputHasEnded)
        input.stop()  // again: nothing left to do
    }

    @Test func stopReturnsPromptlyWhileTheReaderWaitsForSpace() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .passthrough, capacity: 4)
        try pipe.write("0123456789")
        // The queue fills up and the reader waits for space.
        #expect(await eventually { counts.input.load(ordering: .relaxed) >= 1 })
        try await Task.sleep(for: .milliseconds(20))
        let elapsed = ContinuousClock().measure { input.stop() }
        #expect(elapsed < .seconds(1))
        #expect(input.takeInput(max: 100) == Array("0123".utf8), "what was queued stays")
    }

    @Test func aFullQueueDelaysInputButDropsNothing() throws {
        let pipe = try TestPipe()
        let input = try ConsoleInput(fileDescriptor: pipe.readEnd, mode: .passthrough, capacity: 16)
        defer { input.stop() }
        let sent = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try pipe.write(sent)
        var received: [UInt8] = []
        var largestTake = 0
        // ~190 takes of at most 16 bytes. Polled on this thread rather than
        // with `eventually`: an async sleep waits for a cooperative thread,
        // and with the other suites' guests running on both of a loaded
        // 2-core machine's threads it once stretched 3000 bytes past a minute.
        let deadline = ContinuousClock.now + .seconds(60)
        while received.count < sent.count && ContinuousClock.now < deadline {
            let bytes = input.takeInput(max: 1000)
            largestTake = max(largestTake, bytes.count)
            received += bytes
            if bytes.isEmpty { usleep(1000) }
        }
        #expect(received == sent)
        #expect(largestTake <= 16, "the queue never holds more than its capacity")
    }

    @Test func terminalModeQuitsOnCtrlAX() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .terminal)
        defer { input.stop() }
        try pipe.write([UInt8(ascii: "l"), UInt8(ascii: "s"), 0x01, UInt8(ascii: "x")])
        #expect(await eventually { counts.quit.load(ordering: .relaxed) == 1 })
        #expect(input.takeInput(max: 100) == Array("ls".utf8))
        #expect(await eventually { input.inputHasEnded })
        // The reader has stopped: later bytes stay in the pipe.
        try pipe.write("after")
        try await Task.sleep(for: .milliseconds(20))
        #expect(input.takeInput(max: 100) == [])
        #expect(counts.endOfInput.load(ordering: .relaxed) == 0)
    }

    @Test func terminalModeHelpAndSplitPrefix() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .terminal)
        defer { input.stop() }
        try pipe.write([UInt8(ascii: "a"), 0x01])
        #expect(await eventually { input.hasPendingInput })
        // Give the reader time to see the lone prefix in a read of its own.
        try await Task.sleep(for: .milliseconds(20))
        try pipe.write([UInt8(ascii: "h"), 0x01])
        #expect(await eventually { counts.help.load(ordering: .relaxed) == 1 })
        try await Task.sleep(for: .milliseconds(20))
        try pipe.write([0x01, UInt8(ascii: "b")])
        #expect(await collect(3, from: input) == [UInt8(ascii: "a"), 0x01, UInt8(ascii: "b")])
        #expect(counts.quit.load(ordering: .relaxed) == 0)
    }

    @Test func terminalModePauseAndSnapshotKeepReading() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .terminal)
        defer { input.stop() }
        try pipe.write([UInt8(ascii: "a"), 0x01, UInt8(ascii: "p")])
        #expect(await eventually { counts.pause.load(ordering: .relaxed) == 1 })
        // Split across two reads: the prefix alone, then the command.
        try pipe.write([UInt8(ascii: "b"), 0x01])
        #expect(await collect(2, from: input) == Array("ab".utf8))
        try await Task.sleep(for: .milliseconds(20))
        try pipe.write([UInt8(ascii: "s"), UInt8(ascii: "c")])
        #expect(await eventually { counts.snapshot.load(ordering: .relaxed) == 1 })
        try pipe.write([0x01, UInt8(ascii: "p")])
        #expect(await eventually { counts.pause.load(ordering: .relaxed) == 2 })
        // Unlike Ctrl-A x, neither ends the input: what follows still arrives.
        try pipe.write("d")
        #expect(await collect(2, from: input) == Array("cd".utf8))
        #expect(!input.inputHasEnded)
        #expect(counts.quit.load(ordering: .relaxed) == 0)
        #expect(counts.help.load(ordering: .relaxed) == 0)
    }

    @Test func passthroughModeHasNoPauseOrSnapshot() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .passthrough)
        defer { input.stop() }
        let sent: [UInt8] = [0x01, UInt8(ascii: "p"), 0x01, UInt8(ascii: "s")]
        try pipe.write(sent)
        #expect(await collect(sent.count, from: input) == sent)
        #expect(counts.pause.load(ordering: .relaxed) == 0)
        #expect(counts.snapshot.load(ordering: .relaxed) == 0)
    }

    @Test func terminalModeForwardsAPrefixLeftAtEndOfInput() async throws {
        let pipe = try TestPipe()
        let counts = CallbackCounts()
        let input = try counts.start(pipe.readEnd, mode: .terminal)
        defer { input.stop() }
        try pipe.write([UInt8(ascii: "z"), 0x01])
        pipe.closeWriteEnd()
        #expect(await eventually { input.inputHasEnded })
        #expect(input.takeInput(max: 10) == [UInt8(ascii: "z"), 0x01])
        #expect(counts.endOfInput.load(ordering: .relaxed) == 1)
    }

    @Test func stopFromACallbackDoesNotDeadlock() async throws {
        let pipe = try TestPipe()
        let box = Mutex<ConsoleInput?>(nil)
        let stopped = Atomic<Bool>(false)
        let input = try ConsoleInput(
            fileDescriptor: pipe.readEnd, mode: .passthrough,
            onInput: {
                box.withLock { $0 }?.stop()
                stopped.store(true, ordering: .releasing)
            })
        box.withLock { $0 = input }
        try pipe.write("q")
        #expect(await eventually { stopped.load(ordering: .acquiring) && input.inputHasEnded })
        #expect(input.takeInput(max: 10) == Array("q".utf8))
        input.stop()
        box.withLock { $0 = nil }
    }

    @Test func deinitStopsTheReader() async throws {
        let pipe = try TestPipe()
        do {
            let input = try ConsoleInput(fileDescriptor: pipe.readEnd, mode: .passthrough)
            try await Task.sleep(for: .milliseconds(10))
            _ = input
        }
        // Nobody reads the pipe any more: what is written stays in it.
        try pipe.write("left")
        try await Task.sleep(for: .milliseconds(20))
        var buffer = [UInt8](repeating: 0, count: 16)
        _ = fcntl(pipe.readEnd, F_SETFL, O_NONBLOCK)
        let n = buffer.withUnsafeMutableBytes { read(pipe.readEnd, $0.baseAddress, $0.count) }
        #expect(n == 4)
        #expect(Array(buffer.prefix(max(0, n))) == Array("left".utf8))
    }

    @Test func aClosedDescriptorEndsTheInput() async throws {
        // A descriptor that is not open (EBADF) is the end of input, not a
        // hang. The open-files limit itself can never be open, whereas a
        // closed descriptor's number could be reused by a test running alongside.
        let notOpen = Int32(clamping: sysconf(Int32(_SC_OPEN_MAX)))
        let counts = CallbackCounts()
        let input = try counts.start(notOpen, mode: .passthrough)
        defer { input.stop() }
        #expect(await eventually { input.inputHasEnded })
        #expect(counts.endOfInput.load(ordering: .relaxed) == 1)
    }
}

// MARK: - Terminal

/// A pseudo-terminal pair; the slave side stands in for the user's terminal.
private struct PseudoTerminal: ~Copyable {
    let master: Int32
    let slave: Int32

    init() throws {
        let libc = try PseudoTerminalFunctions()
        let master = libc.openpt(O_RDWR | O_NOCTTY)
        guard master >= 0 else { throw PseudoTerminalError(step: "posix_openpt", errno: errno) }
        guard libc.grantpt(master) == 0, libc.unlockpt(master) == 0, let name = libc.ptsname(master) else {
            close(master)
            throw PseudoTerminalError(step: "grantpt/unlockpt/ptsname", errno: errno)
        }
        let slave = open(name, O_RDWR | O_NOCTTY)
        guard slave >= 0 else {
            close(master)
            throw PseudoTerminalError(step: "open \(String(cString: name))", errno: errno)
        }
        self.master = master
        self.slave = slave
    }

    deinit {
        close(slave)
        close(master)
    }

    func attributes() throws -> termios {
        var attributes = termios()
        try #require(tcgetattr(slave, &attributes) == 0)
        return attributes
    }
}

/// libc's pty functions, looked up at run time: Swift's Glibc module is built
/// without _XOPEN_SOURCE, which hides their declarations, not the functions.
private struct PseudoTerminalFunctions {
    let openpt: @convention(c) (Int32) -> Int32
    let grantpt: @convention(c) (Int32) -> Int32
    let unlockpt: @convention(c) (Int32) -> Int32
    let ptsname: @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?

    init() throws {
        let program = dlopen(nil, RTLD_NOW)
        func lookup<F>(_ name: String, as type: F.Type) throws -> F {
            let symbol = try #require(dlsym(program, name), "\(name) not found in libc")
            return unsafeBitCast(symbol, to: type)
        }
        openpt = try lookup("posix_openpt", as: (@convention(c) (Int32) -> Int32).self)
        grantpt = try lookup("grantpt", as: (@convention(c) (Int32) -> Int32).self)
        unlockpt = try lookup("unlockpt", as: (@convention(c) (Int32) -> Int32).self)
        ptsname = try lookup("ptsname", as: (@convention(c) (Int32) -> UnsafeMutablePointer<CChar>?).self)
    }
}

private struct PseudoTerminalError: Error {
    var step: String
    var errno: Int32
}

/// Compares every byte, padding included, so "exactly restored" means it.
private func sameBytes(_ a: termios, _ b: termios) -> Bool {
    withUnsafeBytes(of: a) { a in withUnsafeBytes(of: b) { b in a.elementsEqual(b) } }
}

private func controlCharacter(_ attributes: termios, _ index: Int32) -> UInt8 {
    withUnsafeBytes(of: attributes.c_cc) { $0[Int(index)] }
}

private func has(_ flags: tcflag_t, _ bits: Int32) -> Bool { flags & tcflag_t(bits) == tcflag_t(bits) }
private func hasNone(_ flags: tcflag_t, _ bits: Int32) -> Bool { flags & tcflag_t(bits) == 0 }

/// Serialised: raw mode is process-wide state (one terminal at a time).
@Suite(.serialized) struct TerminalTests {
    @Test func isTerminalTellsATTYFromAPipe() throws {
        let pty = try PseudoTerminal()
        let pipe = try TestPipe()
        #expect(Terminal.isTerminal(pty.slave))
        #expect(!Terminal.isTerminal(pipe.readEnd))
        #expect(!Terminal.isTerminal(-1))
    }

    @Test func makeRawRefusesAPipe() throws {
        let pipe = try TestPipe()
        #expect(throws: TerminalError.notATerminal(fileDescriptor: pipe.readEnd)) { _ = try Terminal.makeRaw(pipe.readEnd) }
    }

    @Test func makeRawSetsQEMUsFlagsAndRestoreBringsBackTheOriginal() throws {
        let pty = try PseudoTerminal()
        let original = try pty.attributes()
        // A fresh pty is cooked: this test would prove nothing otherwise.
        #expect(has(original.c_lflag, ICANON | ECHO | ISIG))
        #expect(has(original.c_oflag, OPOST | ONLCR))

        let terminal = try Terminal.makeRaw(pty.slave)
        #expect(terminal.fileDescriptor == pty.slave)
        let raw = try pty.attributes()
        #expect(hasNone(raw.c_lflag, ECHO | ECHONL | ICANON | IEXTEN | ISIG))
        #expect(hasNone(raw.c_iflag, IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON))
        #expect(has(raw.c_oflag, OPOST | ONLCR), "output processing stays, so a guest's bare LF starts a new line")
        #expect(raw.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8))
        #expect(hasNone(raw.c_cflag, PARENB))
        #expect(controlCharacter(raw, VMIN) == 1)
        #expect(controlCharacter(raw, VTIME) == 0)

        terminal.restore()
        #expect(sameBytes(try pty.attributes(), original))
        terminal.restore()  // again: nothing changes
        #expect(sameBytes(try pty.attributes(), original))
    }

    @Test func theEndOfTheValueRestores() throws {
        let pty = try PseudoTerminal()
        let original = try pty.attributes()
        do {
            let terminal = try Terminal.makeRaw(pty.slave)
            #expect(hasNone(try pty.attributes().c_lflag, ICANON))
            _ = terminal
        }
        #expect(sameBytes(try pty.attributes(), original))
    }

    @Test func oneTerminalAtATime() throws {
        let first = try PseudoTerminal()
        let second = try PseudoTerminal()
        let secondOriginal = try second.attributes()
        let terminal = try Terminal.makeRaw(first.slave)
        #expect(throws: TerminalError.alreadyRaw(fileDescriptor: second.slave)) { _ = try Terminal.makeRaw(second.slave) }
        #expect(sameBytes(try second.attributes(), secondOriginal), "the refused terminal is untouched")
        terminal.restore()

        // Once restored, raw mode is free again, and the old value's restore
        // (or its end) leaves the new session alone.
        let next = try Terminal.makeRaw(second.slave)
        terminal.restore()
        #expect(hasNone(try second.attributes().c_lflag, ICANON))
        next.restore()
        #expect(sameBytes(try second.attributes(), secondOriginal))
    }

    @Test func theSignalPathRestoresAndHandlersAreInstalled() throws {
        let pty = try PseudoTerminal()
        let original = try pty.attributes()
        let terminal = try Terminal.makeRaw(pty.slave)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] {
            var action = sigaction()
            #expect(sigaction(signal, nil, &action) == 0)
            #expect(action.sa_flags & SA_SIGINFO != 0, "signal \(signal) has the restoring handler")
        }
        // What the handlers (and atexit) run, without ending the test process.
        Terminal.restoreFromSignalHandler()
        #expect(sameBytes(try pty.attributes(), original))
        terminal.restore()
        #expect(sameBytes(try pty.attributes(), original))
    }

    @Test func rawAttributesChangeOnlyWhatQEMUChanges() {
        var cooked = termios()
        cooked.c_iflag = ~0
        cooked.c_oflag = tcflag_t(ONLCR)
        cooked.c_lflag = ~0
        cooked.c_cflag = tcflag_t(CS7 | PARENB | CREAD)
        let raw = Terminal.rawAttributes(from: cooked)
        #expect(raw.c_iflag == ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON))
        #expect(raw.c_oflag == tcflag_t(OPOST | ONLCR))
        #expect(raw.c_lflag == ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN | ISIG))
        #expect(raw.c_cflag == tcflag_t(CS8 | CREAD))
    }

    /// The whole console path over a pseudo-terminal: raw mode delivers ^C
    /// and unterminated lines to the reader, which applies the escapes.
    @Test func rawTerminalFeedsConsoleInput() async throws {
        let pty = try PseudoTerminal()
        let original = try pty.attributes()
        let terminal = try Terminal.makeRaw(pty.slave)
        defer { terminal.restore() }
        let counts = CallbackCounts()
        let input = try counts.start(pty.slave, mode: .terminal)
        defer { input.stop() }
        let typed: [UInt8] = [0x03, UInt8(ascii: "l"), UInt8(ascii: "s"), 0x1a, 0x1c, 0x01, 0x01, UInt8(ascii: "\r")]
        let written = typed.withUnsafeBytes { write(pty.master, $0.baseAddress, $0.count) }
        try #require(written == typed.count)
        // In cooked mode ^C, ^Z and ^\ would be eaten and nothing would come
        // before a newline; CR would become LF.
        #expect(await collect(7, from: input) == [0x03, UInt8(ascii: "l"), UInt8(ascii: "s"), 0x1a, 0x1c, 0x01, UInt8(ascii: "\r")])
        // And nothing was echoed back to the user.
        _ = fcntl(pty.master, F_SETFL, O_NONBLOCK)
        var echo = [UInt8](repeating: 0, count: 64)
        #expect(echo.withUnsafeMutableBytes { read(pty.master, $0.baseAddress, $0.count) } <= 0)

        let quit: [UInt8] = [0x01, UInt8(ascii: "x")]
        #expect(quit.withUnsafeBytes { write(pty.master, $0.baseAddress, $0.count) } == 2)
        #expect(await eventually { counts.quit.load(ordering: .relaxed) == 1 })
        input.stop()
        terminal.restore()
        #expect(sameBytes(try pty.attributes(), original))
    }
}

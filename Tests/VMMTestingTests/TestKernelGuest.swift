import Foundation
import VMMTesting

/// One restored test-kernel machine at its shell prompt, and the backends
/// behind its virtio devices.
struct TestKernelGuest {
    let vm: TestVM
    let backends: LinuxGuestFixture.Backends

    /// Types `command` at the shell and runs the guest until the next
    /// prompt; returns what the shell printed after the command line. The
    /// UART takes 64 bytes at a time: a longer line is typed as the guest
    /// reads it.
    @discardableResult
    func shell(_ command: String, timeout: Duration = .seconds(60)) throws -> String {
        let before = vm.serialBytes.count
        try type(command)
        try runUntilOutput(since: before, contains: "\n" + TestKernel.prompt, timeout: timeout)
        // Drop the echoed command line (and the shell's cursor query before
        // it): what matters is what came after it.
        let text = output(since: before)
        guard let newline = text.firstIndex(of: "\n") else { return text }
        return String(text[text.index(after: newline)...])
    }

    /// What the guest wrote to COM1 after the first `offset` bytes, with
    /// `\r\n` as `\n` (in Swift `"\r\n"` is one `Character`, which a search
    /// for `"\n"` would not find).
    func output(since offset: Int) -> String {
        String(decoding: vm.serialBytes.dropFirst(offset), as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// Runs the guest until what it wrote after the first `offset` bytes contains `text`.
    func runUntilOutput(since offset: Int, contains text: String, timeout: Duration = .seconds(60)) throws {
        let deadline = ContinuousClock.now + timeout
        while !output(since: offset).contains(text) {
            let left = deadline - ContinuousClock.now
            guard left > .zero else {
                throw TestKernelGuestTimeout(
                    description: "no \"\(text)\" from the guest within \(timeout); it wrote: \(output(since: offset))")
            }
            try vm.runBootstrapProcessor(upTo: min(left, Self.slice))
        }
    }

    /// How long the bootstrap processor runs before the output is looked at again.
    static let slice: Duration = .milliseconds(100)

    /// Types `command` without waiting for the prompt (for what goes on in the background).
    func type(_ command: String) throws {
        var rest = Array((command + "\n").utf8)
        let deadline = ContinuousClock.now + .seconds(10)
        while !rest.isEmpty {
            let accepted = vm.machine.serial.enqueueInput(rest)
            rest.removeFirst(accepted)
            if rest.isEmpty { break }
            guard ContinuousClock.now < deadline else {
                throw TestKernelGuestTimeout(description: "the guest read no more of \"\(command)\" within 10 s")
            }
            try vm.runBootstrapProcessor(upTo: Self.slice)
        }
    }

    /// The value of `key` (in kB) in the guest's /proc/meminfo.
    func meminfo(_ key: String) throws -> Int? {
        let text = try shell("grep \(key): /proc/meminfo")
        let line = text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
        return line.flatMap { Int($0.split(separator: " ")[1]) }
    }
}

/// The guest did not write what a test waited for in time.
struct TestKernelGuestTimeout: Error, CustomStringConvertible {
    let description: String
}

import VMCore

/// Firecracker's boot-timer pseudo device: a guest that writes the byte 123
/// to it (an init that does so once it is up) has the time since the machine
/// started, wall and CPU, reported in Firecracker's words:
/// `Guest-boot-time =   4213 us 4 ms,   3920 CPU us 3 CPU ms`.
///
/// Firecracker places it, with `--boot-timer`, in the first MMIO window
/// (0xd0000000 on x86), where its guests' boot-time tools write through
/// `/dev/mem`; `windowSize` bytes are decoded. Only a one-byte write of 123
/// at offset 0 counts; every other access is ignored, and reads return 0.
///
/// The clock is a closure (`Sample`s of monotonic wall time and the
/// process's CPU time), so that tests can drive it; the machine gives it the
/// host's clocks.
public final class BootTimer: MMIODevice {
    /// The value a guest writes when it has booted.
    public static let magicValue: UInt8 = 123
    /// The bytes the device decodes: one MMIO window.
    public static let windowSize: UInt64 = 0x1000

    /// One reading of the clocks.
    public struct Sample: Hashable, Sendable {
        /// Monotonic wall-clock time, in microseconds.
        public var wallMicroseconds: UInt64
        /// The process's CPU time, in microseconds.
        public var cpuMicroseconds: UInt64

        public init(wallMicroseconds: UInt64, cpuMicroseconds: UInt64) {
            self.wallMicroseconds = wallMicroseconds
            self.cpuMicroseconds = cpuMicroseconds
        }
    }

    /// The time from the start to one magic write.
    public struct Report: Hashable, Sendable, CustomStringConvertible {
        public var wallMicroseconds: UInt64
        public var cpuMicroseconds: UInt64

        public init(wallMicroseconds: UInt64, cpuMicroseconds: UInt64) {
            self.wallMicroseconds = wallMicroseconds
            self.cpuMicroseconds = cpuMicroseconds
        }

        /// Firecracker's line: microseconds right-aligned in six columns, then whole milliseconds.
        public var description: String {
            func padded(_ value: UInt64) -> String {
                let text = String(value)
                return String(repeating: " ", count: max(0, 6 - text.count)) + text
            }
            return "Guest-boot-time = \(padded(wallMicroseconds)) us \(wallMicroseconds / 1000) ms, "
                + "\(padded(cpuMicroseconds)) CPU us \(cpuMicroseconds / 1000) CPU ms"
        }
    }

    private let clock: () -> Sample
    private let start: Sample
    private let report: (Report) -> Void
    /// Every report so far, oldest first.
    public private(set) var reports: [Report] = []

    /// A boot timer whose start is now (`clock()` at creation), handing each
    /// report to `report` on the thread of the guest's write.
    public init(clock: @escaping () -> Sample, report: @escaping (Report) -> Void) {
        self.clock = clock
        self.start = clock()
        self.report = report
    }

    public func read(offset: UInt64, size: Int) -> UInt64 { 0 }

    public func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
        guard offset == 0, size == 1, UInt8(truncatingIfNeeded: value) == Self.magicValue else { return nil }
        let now = clock()
        // Saturating: a clock that a test winds back must not trap.
        let elapsed = Report(
            wallMicroseconds: now.wallMicroseconds > start.wallMicroseconds ? now.wallMicroseconds - start.wallMicroseconds : 0,
            cpuMicroseconds: now.cpuMicroseconds > start.cpuMicroseconds ? now.cpuMicroseconds - start.cpuMicroseconds : 0)
        reports.append(elapsed)
        report(elapsed)
        return nil
    }
}

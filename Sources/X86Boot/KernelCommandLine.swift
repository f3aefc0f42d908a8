/// A Linux kernel command line that is valid at every step of building it.
///
/// Every byte is printable ASCII (0x20-0x7e), so there is no NUL inside it and
/// nothing the kernel's parser would trip over, and its length never exceeds
/// `capacity`. A change that would break either rule throws and leaves the
/// line as it was. The loaders check the length once more against the
/// kernel's own `cmdline_size`. (The idea is linux-loader's `Cmdline`.)
public struct KernelCommandLine: Hashable, Sendable, CustomStringConvertible {
    /// x86's `COMMAND_LINE_SIZE` (2048) minus the NUL: what current kernels,
    /// Debian's included, report as `cmdline_size`.
    public static let defaultCapacity = 2047

    /// The most bytes the line may hold, not counting the terminating NUL.
    public let capacity: Int
    /// The line's bytes, without a terminating NUL.
    public private(set) var bytes: [UInt8] = []

    /// An empty command line that may grow to `capacity` bytes.
    public init(capacity: Int = KernelCommandLine.defaultCapacity) {
        self.capacity = max(0, capacity)
    }

    /// A command line holding `text`, validated.
    public init(_ text: String, capacity: Int = KernelCommandLine.defaultCapacity) throws(BootError) {
        self.init(capacity: capacity)
        try append(text)
    }

    /// Appends `parameter` (for example `console=ttyS0` or a whole space-separated
    /// list), separated from what is already there by one space. An empty
    /// `parameter` changes nothing.
    public mutating func append(_ parameter: String) throws(BootError) {
        let addition = Array(parameter.utf8)
        guard !addition.isEmpty else { return }
        let separator: [UInt8] = bytes.isEmpty ? [] : [0x20]
        let start = bytes.count + separator.count
        if let index = addition.firstIndex(where: { !(0x20...0x7e).contains($0) }) {
            throw .commandLineInvalidCharacter(byte: addition[index], offset: start + index)
        }
        let length = start + addition.count
        guard length <= capacity else { throw .commandLineTooLong(length: length, capacity: capacity) }
        bytes += separator + addition
    }

    /// Appends `key=value`.
    public mutating func append(key: String, value: String) throws(BootError) {
        try append("\(key)=\(value)")
    }

    /// Whether the line is empty.
    public var isEmpty: Bool { bytes.isEmpty }

    /// The bytes to write into guest memory: the line and its terminating NUL.
    public var nulTerminated: [UInt8] { bytes + [0] }

    /// Throws unless the line fits a kernel that accepts `limit` bytes (its `cmdline_size`).
    public func check(fitsIn limit: Int) throws(BootError) {
        guard bytes.count <= limit else { throw .commandLineTooLong(length: bytes.count, capacity: limit) }
    }

    public var description: String { String(decoding: bytes, as: UTF8.self) }
}

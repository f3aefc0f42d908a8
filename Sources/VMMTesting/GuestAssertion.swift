import VMCore

/// A check that failed inside the guest (`HC_ASSERT_EQ` / `HC_EXPECT_EQ` in
/// assembly, `SWIFTVMM_ASSERT_EQ` / `SWIFTVMM_EXPECT_EQ` in C).
public struct GuestAssertion: Hashable, Sendable, CustomStringConvertible {
    /// The line of the check in the guest's source.
    public var line: UInt64
    public var expected: UInt64
    public var actual: UInt64
    /// The guest's source file as its build named it (`longmode/boot.S`),
    /// or nil when the guest passed none.
    public var file: String?
    /// What the check is about, in the guest's words; nil or empty if none.
    public var message: String?

    public init(line: UInt64, expected: UInt64, actual: UInt64, file: String? = nil, message: String? = nil) {
        self.line = line
        self.expected = expected
        self.actual = actual
        self.file = file
        self.message = message
    }

    public var description: String {
        let place = file.map { "\($0):\(line)" } ?? "line \(line)"
        let what = message.flatMap { $0.isEmpty ? nil : ": \($0)" } ?? ""
        return "guest assertion failed at \(place)\(what): expected \(hex(expected)), got \(hex(actual))"
    }
}

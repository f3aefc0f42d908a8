import SwiftVMM
import VMCore

/// swiftvmm's paravirtual call convention: how a guest under test talks to its test.
///
/// KVM handles `vmcall` itself and never passes it to user space, so a
/// hypercall is a port write:
///
/// | register | meaning |
/// | --- | --- |
/// | EAX | the call number, written with `out %eax, %dx` to port `Hypercall.port` (0x5f0) |
/// | RDI, RSI, RBX, RCX | arguments 0 to 3 (DI, SI, BX, CX in real mode) |
/// | (call 2) RCX | 0, or the guest-physical address of the check's file name and message, two NUL-terminated strings |
/// | RAX | the result, when the guest resumes |
///
/// RDX holds the port, so it carries no argument. `firmware/include/hypercall.inc`
/// (assembly macros) and `firmware/include/swiftvmm_hypercall.h` (C, freestanding)
/// implement the guest side.
public enum Hypercall: Hashable, Sendable {
    /// The guest is done; `status` is its verdict (0 = success). Call 0.
    case done(status: UInt64)
    /// The guest reached a milestone. Call 1.
    case progress(UInt64)
    /// A check in the guest failed: where (line, and file if the guest said),
    /// the values and the guest's message. Call 2.
    case assertionFailed(GuestAssertion)
    /// Text for the test's log: `length` bytes at guest-physical `address`. Call 3.
    case log(String)
    /// The guest reached stage `stage` of its test and waits for the test to
    /// look (`TestVM.awaitSync(_:)`), as KVM selftests' `GUEST_SYNC`. Call 4.
    case sync(UInt64)
    /// Any other call number: a service the test provides and answers.
    case request(number: UInt32, arguments: [UInt64])

    /// The port hypercalls are written to.
    public static let port: UInt16 = 0x5f0

    /// Call numbers with a meaning of their own; numbers from 0x100 up are the test's.
    public enum Number {
        public static let done: UInt32 = 0
        public static let progress: UInt32 = 1
        public static let assertionFailed: UInt32 = 2
        public static let log: UInt32 = 3
        public static let sync: UInt32 = 4
        /// The first number free for tests' own services.
        public static let firstUserDefined: UInt32 = 0x100
    }

    /// The longest log message read from guest memory; longer ones are cut.
    public static let maximumLogLength: UInt64 = 4096

    /// A failed check with only a line and two values, as guests built
    /// before assertions carried their file and message report it.
    public static func assertionFailed(line: UInt64, expected: UInt64, actual: UInt64) -> Hypercall {
        .assertionFailed(GuestAssertion(line: line, expected: expected, actual: actual))
    }
}

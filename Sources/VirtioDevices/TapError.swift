#if canImport(Glibc)
    import Glibc
#endif

/// Why a tap device could not be opened or set up.
public struct TapError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The interface name asked for.
    public var name: String
    /// What failed: `open /dev/net/tun`, `TUNSETIFF`, `TUNSETVNETHDRSZ`, `TUNSETOFFLOAD`, or a bad name.
    public var operation: String
    /// The errno, 0 for a bad name.
    public var errno: Int32

    public init(name: String, operation: String, errno: Int32) {
        self.name = name
        self.operation = operation
        self.errno = errno
    }

    public var description: String {
        if errno == 0 { return "tap device '\(name)': \(operation)" }
        var hint = ""
        switch errno {
        case 1, 13:
            hint =
                " (opening a tap needs CAP_NET_ADMIN, or a persistent tap owned by this user: ip tuntap add dev \(name) mode tap user $USER)"
        case 2: hint = " (no /dev/net/tun: load the tun module)"
        case 16: hint = " (the tap is busy: another process holds it)"
        case 22: hint = " (an interface of that name exists and is not a tap)"
        default: break
        }
        return "tap device '\(name)': \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))\(hint)"
    }
}

import VMCore

/// A guest access to a scripted port range.
public enum PortAccess: Hashable, Sendable {
    case read(port: UInt16, size: Int)
    case write(port: UInt16, size: Int, value: UInt64)
}

/// A guest access to a scripted MMIO range.
public enum MMIOAccess: Hashable, Sendable {
    case read(address: UInt64, size: Int)
    case write(address: UInt64, size: Int, value: UInt64)
}

/// A port device whose behaviour is a test's closure. A read the closure
/// answers with `nil` reads as all ones, like an empty bus.
final class ScriptedPortDevice: PortIODevice {
    let base: UInt16
    let handler: (PortAccess) -> UInt64?

    init(base: UInt16, handler: @escaping (PortAccess) -> UInt64?) {
        self.base = base
        self.handler = handler
    }

    func read(offset: UInt16, size: Int) -> UInt64 {
        handler(.read(port: base &+ offset, size: size)) ?? .max
    }

    func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        _ = handler(.write(port: base &+ offset, size: size, value: value))
        return nil
    }
}

/// An MMIO device whose behaviour is a test's closure.
final class ScriptedMMIODevice: MMIODevice {
    let base: UInt64
    let handler: (MMIOAccess) -> UInt64?

    init(base: UInt64, handler: @escaping (MMIOAccess) -> UInt64?) {
        self.base = base
        self.handler = handler
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        handler(.read(address: base &+ offset, size: size)) ?? .max
    }

    func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
        _ = handler(.write(address: base &+ offset, size: size, value: value))
        return nil
    }
}

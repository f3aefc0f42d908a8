import Devices
import Logging
import VMCore

/// What the run loop does after an exit.
public enum ExitAction: Hashable, Sendable {
    /// Run the guest again.
    case resume
    /// Give the guest this answer to its pending read, then run it again.
    case completeRead(IOData)
    /// The guest halted; the machine decides whether anything can wake it.
    case halt
    /// Stop running.
    case stop(StopReason)
}

/// Turns each exit into an action by routing I/O to the buses.
///
/// Pure apart from the devices' own state: no KVM, no registers, so it is tested
/// with made-up exits. Does no allocation and no system call for single
/// port or MMIO accesses.
public struct ExitDispatcher {
    public let ports: PortIOBus
    public let mmio: MMIOBus
    public var logger: Logger

    public init(ports: PortIOBus, mmio: MMIOBus, logger: Logger) {
        self.ports = ports
        self.mmio = mmio
        self.logger = logger
    }

    public func handle(_ exit: VMExit) -> ExitAction {
        switch exit {
        case .ioOut(let port, let size, let count, let data):
            let result =
                count == 1
                ? ports.write(port: port, size: Int(size), value: data.value)
                : ports.writeString(port: port, size: Int(size), count: Int(count), data: data)
            if result.unclaimed == .firstTime {
                logger.info("write to unknown port \(hex(port)) (value \(data), ignored; further accesses to it are not logged)")
            }
            if let request = result.request { return .stop(Self.stopReason(for: request)) }
            return .resume
        case .ioIn(let port, let size, let count):
            if count == 1 {
                let result = ports.read(port: port, size: Int(size))
                logUnclaimedRead(result.unclaimed, port: port)
                return .completeRead(IOData(value: result.value, size: Int(size)))
            }
            let result = ports.readString(port: port, size: Int(size), count: Int(count))
            logUnclaimedRead(result.unclaimed, port: port)
            return .completeRead(result.data)
        case .mmioWrite(let address, let data):
            let result = mmio.write(address: address, size: data.count, value: data.value)
            if result.unclaimed == .firstTime {
                logger.info(
                    "MMIO write to \(address), where there is no RAM and no device (ignored; further accesses to its page are not logged)")
            }
            if let request = result.request { return .stop(Self.stopReason(for: request)) }
            return .resume
        case .mmioRead(let address, let size):
            let result = mmio.read(address: address, size: Int(size))
            if result.unclaimed == .firstTime {
                logger.info(
                    "MMIO read from \(address), where there is no RAM and no device (reads as all ones; further accesses to its page are not logged)"
                )
            }
            return .completeRead(IOData(value: result.value, size: Int(size)))
        case .halt:
            return .halt
        case .shutdown:
            return .stop(.shutdown)
        case .internalError(let suberror, let data):
            return .stop(.internalError(suberror: suberror, data: data))
        case .failEntry(let reason, _):
            return .stop(.failEntry(hardwareReason: reason))
        case .systemEvent(.reset, _):
            return .stop(.reset)
        case .systemEvent(.shutdown, _):
            return .stop(.powerOff)
        case .systemEvent:
            return .stop(.unhandled(exit))
        case .interrupted:
            return .stop(.interrupted)
        case .debug, .unknown:
            return .stop(.unhandled(exit))
        }
    }

    private func logUnclaimedRead(_ unclaimed: UnclaimedAccess, port: UInt16) {
        if unclaimed == .firstTime {
            logger.info("read from unknown port \(hex(port)) (reads as all ones; further accesses to it are not logged)")
        }
    }

    static func stopReason(for request: DeviceRequest) -> StopReason {
        switch request {
        case .exit(let status): return .debugExit(status: status)
        case .reset: return .reset
        case .powerOff: return .powerOff
        case .suspend: return .suspended
        }
    }
}

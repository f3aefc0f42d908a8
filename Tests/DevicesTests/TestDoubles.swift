import Devices
import VMCore

/// An interrupt line that records every level the device drives.
final class RecordingInterruptLine: InterruptLine {
    private(set) var levels: [Bool] = []
    var isHigh: Bool { levels.last ?? false }

    func setLevel(_ high: Bool) {
        levels.append(high)
    }
}

/// A port device that records its accesses and answers reads with a fixed
/// value plus the offset, so tests can tell which device and offset answered.
final class RecordingPortDevice: PortIODevice {
    enum Access: Equatable {
        case read(offset: UInt16, size: Int)
        case write(offset: UInt16, size: Int, value: UInt64)
    }

    let readValue: UInt64
    var request: DeviceRequest?
    private(set) var accesses: [Access] = []
    /// Successive values answered by reads, before falling back to `readValue`.
    var scriptedReads: [UInt64] = []

    init(readValue: UInt64 = 0, request: DeviceRequest? = nil) {
        self.readValue = readValue
        self.request = request
    }

    func read(offset: UInt16, size: Int) -> UInt64 {
        accesses.append(.read(offset: offset, size: size))
        if !scriptedReads.isEmpty { return scriptedReads.removeFirst() }
        return readValue + UInt64(offset)
    }

    func write(offset: UInt16, size: Int, value: UInt64) -> DeviceRequest? {
        accesses.append(.write(offset: offset, size: size, value: value))
        return request
    }
}

/// The MMIO counterpart of `RecordingPortDevice`.
final class RecordingMMIODevice: MMIODevice {
    enum Access: Equatable {
        case read(offset: UInt64, size: Int)
        case write(offset: UInt64, size: Int, value: UInt64)
    }

    let readValue: UInt64
    private(set) var accesses: [Access] = []

    init(readValue: UInt64 = 0) {
        self.readValue = readValue
    }

    func read(offset: UInt64, size: Int) -> UInt64 {
        accesses.append(.read(offset: offset, size: size))
        return readValue
    }

    func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
        accesses.append(.write(offset: offset, size: size, value: value))
        return nil
    }
}

import Devices
import VMCore

/// Every access a guest (or a confused bus) could make to a device: each
/// offset of its registered range and a few past it, every size from 0 to 8,
/// and values with every byte lane set or clear. Running it is the test: a
/// device that traps on any of them fails the whole run.
///
/// Returns what the writes asked of the machine, so a caller can check that
/// only the requests the device documents ever appear.
@discardableResult
func sweepEveryAccess(_ device: any PortIODevice, length: UInt16) -> Set<DeviceRequest> {
    let values: [UInt64] = [0, 0xfe, 0xff, 0x5a, 0xa5a5, 0xffff_ffff, 0x8000_0000, .max]
    var requests = Set<DeviceRequest>()
    for offset in 0..<(length + 4) {
        for size in 0...8 {
            _ = device.read(offset: offset, size: size)
            for value in values {
                if let request = device.write(offset: offset, size: size, value: value) {
                    requests.insert(request)
                }
                _ = device.read(offset: offset, size: size)
            }
        }
    }
    return requests
}

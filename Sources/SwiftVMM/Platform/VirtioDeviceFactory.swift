import SwiftVMMConfig
import Virtio
import VirtioDevices

/// Builds the device a `VirtioDeviceConfiguration` describes, opening the
/// files, taps and sockets it names.
enum VirtioDeviceFactory {
    static func make(_ configuration: VirtioDeviceConfiguration) throws(MachineError) -> any VirtioDevice {
        switch configuration {
        case .block(let disk):
            do {
                let image = try BlockImage(path: disk.path, readOnly: disk.readOnly, direct: disk.direct)
                return VirtioBlock(image: image, identifier: disk.identifier)
            } catch { throw .virtioDevice(configuration, reason: error.description) }
        case .entropy:
            return VirtioEntropy()
        case .console(let target):
            do {
                switch target {
                case .socket(let path): return VirtioConsole(backend: try SocketConsoleBackend(path: path))
                case .file(let path): return VirtioConsole(backend: try FileConsoleBackend(path: path))
                }
            } catch { throw .virtioDevice(configuration, reason: error.description) }
        case .network(let net):
            do {
                let tap = try TapDevice(name: net.tap)
                return VirtioNet(tap: tap, mac: net.mac.flatMap { MACAddress(bytes: $0) })
            } catch { throw .virtioDevice(configuration, reason: error.description) }
        case .vsock(let vsock):
            do { return try VirtioVsock(cid: UInt64(vsock.cid), socketPath: vsock.socketPath) } catch {
                throw .virtioDevice(configuration, reason: error.description)
            }
        case .balloon:
            return VirtioBalloon()
        }
    }
}

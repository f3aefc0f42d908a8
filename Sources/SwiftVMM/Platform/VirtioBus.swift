import ACPI
import GuestMemory
import HostSupport
import KVM
import Logging
import SwiftVMMConfig
import VMCore
import Virtio

/// A machine's virtio devices: their transports on the MMIO bus, and the
/// I/O thread that serves them.
///
/// A guest's doorbell write (`QueueNotify`) is an ioeventfd inside KVM: it
/// neither exits nor waits; the I/O thread's event loop wakes on it and lets
/// the device work, then raises the interrupt through an irqfd, also inside
/// KVM. A vCPU thread therefore never waits for a disk or a socket. Without
/// ioeventfds the doorbell write exits and signals the same eventfd.
final class VirtioBus {
    let slots: [VirtioLayout.Slot]
    let transports: [VirtioMMIOTransport]
    /// The I/O thread.
    let loop: EventLoop
    /// The irqfds, one per device; kept alive as long as the transports are.
    private let interrupts: [EventNotifier]

    init(
        _ configurations: [VirtioDeviceConfiguration], memory: GuestMemoryView, vm: borrowing KVMVirtualMachine, mmio: MMIOBusRegistrar,
        logger: Logger, reservedWindows: Int = 0
    ) throws(MachineError) {
        guard let slots = VirtioLayout.slots(count: configurations.count, reservedWindows: reservedWindows) else {
            throw .tooManyVirtioDevices(configurations.count, maximum: VirtioLayout.maximumDevices)
        }
        do { loop = try EventLoop(name: "virtio-io") } catch { throw .virtioIO(error) }
        var transports: [VirtioMMIOTransport] = []
        var interrupts: [EventNotifier] = []
        for (configuration, slot) in zip(configurations, slots) {
            let device = try VirtioDeviceFactory.make(configuration)
            let interrupt: EventNotifier
            let transport: VirtioMMIOTransport
            do {
                interrupt = try EventNotifier()
                transport = try VirtioMMIOTransport(device: device, memory: memory, interrupt: interrupt, eventLoop: loop)
            } catch { throw .virtioIO(error) }
            do { try vm.registerIRQFD(interrupt.fileDescriptor, gsi: slot.gsi) } catch { throw .kvm(error) }
            let name = "\(configuration.kindName) at \(slot.base)"
            transport.onError = { message in logger.warning("\(name): \(message)") }
            try mmio(transport, slot.base, VirtioMMIOTransport.windowSize)
            for (queue, notifier) in transport.notifiers.enumerated() {
                let doorbell = GuestAddress(slot.base.rawValue + 0x50)
                do {
                    try vm.registerIOEventFD(notifier.fileDescriptor, mmioAddress: doorbell, length: 4, value: UInt64(queue))
                } catch {
                    logger.debug("\(name): no ioeventfd for queue \(queue) (\(error)); its doorbell exits to the VMM")
                }
                do {
                    try loop.register(fd: notifier.fileDescriptor) { [weak transport] _ in
                        notifier.drain()
                        transport?.processQueue(queue)
                    }
                } catch { throw .virtioIO(error) }
            }
            transports.append(transport)
            interrupts.append(interrupt)
        }
        self.slots = slots
        self.transports = transports
        self.interrupts = interrupts
    }

    deinit { loop.stop() }

    /// Runs `body` with every device's work stopped (`VirtioMMIOTransport.suspend()`).
    func withDevicesSuspended<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        for transport in transports { transport.suspend() }
        defer { for transport in transports { transport.resume() } }
        return try body()
    }

    /// The DSDT's description of the devices.
    var acpiDevices: [ACPIMMIODevice] {
        slots.map {
            ACPIMMIODevice(
                hardwareID: "LNRO0005", uniqueID: UInt32($0.index), base: UInt32($0.base.rawValue),
                length: UInt32(VirtioMMIOTransport.windowSize), gsi: $0.gsi)
        }
    }

    /// What a Linux or Multiboot command line gets appended.
    var kernelArguments: String { VirtioLayout.kernelArguments(slots) }
}

/// Puts a device on the MMIO bus (the bus's `register`, with its error as a `MachineError`).
typealias MMIOBusRegistrar = (_ device: any MMIODevice, _ base: GuestAddress, _ length: UInt64) throws(MachineError) -> Void

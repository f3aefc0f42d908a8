import Devices
import GuestMemory
import HostSupport
import Synchronization
import VMCore

/// The virtio-mmio transport, version 2 (virtio 1.2, section 4.2): the
/// register window a driver finds a device through, negotiates features in,
/// lays its queues out with and sets the status in, at a 4 KiB MMIO window.
///
/// Notifications never make the vCPU do the device's work: a write to
/// `QueueNotify` signals that queue's `EventNotifier`, which the machine
/// registers with KVM as an ioeventfd (so the write does not even exit) and
/// with the I/O thread's loop, which calls `processQueue(_:)`. A write that
/// does exit (no ioeventfd) signals the same notifier.
///
/// Registers are 32-bit: other widths read 0 and are ignored, as a device
/// may. A driver that breaks the rules (bad features, a queue outside RAM, a
/// broken chain) puts the device in `NEEDS_RESET` and gets the
/// configuration-change interrupt; the error is reported once to `onError`.
public final class VirtioMMIOTransport: MMIODevice, @unchecked Sendable {
    /// The window a transport occupies.
    public static let windowSize: UInt64 = 0x1000
    /// "virt" in little-endian.
    public static let magic: UInt32 = 0x7472_6976
    /// "SVMM", the vendor ID every swiftvmm device reports.
    public static let vendorID: UInt32 = 0x4d4d_5653
    /// Where the device's configuration space starts in the window.
    static let configurationOffset: UInt64 = 0x100

    public let device: any VirtioDevice
    /// One per queue; the machine wires them to KVM and the I/O thread.
    public let notifiers: [EventNotifier]
    private let memory: GuestMemoryView
    private let interrupt: (any VirtioInterrupt)?
    private let eventLoop: EventLoop?
    /// Called once per broken-driver episode, with what went wrong.
    public var onError: (@Sendable (String) -> Void)?

    /// Everything the registers hold, behind one lock that the I/O thread
    /// takes too while a device works on its queues.
    private let lock = ThreadLock<Void>(())
    private var registers = Registers()
    private var active: VirtioQueueSet?
    /// While above zero, the device does no work (`suspend()`).
    private var suspensions = 0
    /// Interrupt status (bit 0: used buffer, bit 1: configuration change),
    /// outside the lock so that the guest's interrupt handler never waits
    /// for a device that is busy with a disk.
    private let interruptStatus = Atomic<UInt32>(0)
    private let configurationGeneration = Atomic<UInt32>(0)

    /// The driver-visible registers.
    struct Registers: Hashable, Codable {
        var status = VirtioStatus()
        var deviceFeaturesSelect: UInt32 = 0
        var driverFeaturesSelect: UInt32 = 0
        var driverFeatures: UInt64 = 0
        var queueSelect: UInt32 = 0
        var queues: [QueueRegisters] = []
    }

    /// One queue's setup registers.
    struct QueueRegisters: Hashable, Codable {
        var size: UInt16 = 0
        var ready = false
        var descriptorTable: UInt64 = 0
        var availableRing: UInt64 = 0
        var usedRing: UInt64 = 0
    }

    /// The register offsets (virtio 1.2, table 4.1).
    enum Register: UInt64 {
        case magic = 0x000, version = 0x004, deviceID = 0x008, vendorID = 0x00c
        case deviceFeatures = 0x010, deviceFeaturesSelect = 0x014
        case driverFeatures = 0x020, driverFeaturesSelect = 0x024
        case queueSelect = 0x030, queueSizeMaximum = 0x034, queueSize = 0x038
        case queueReady = 0x044, queueNotify = 0x050
        case interruptStatus = 0x060, interruptAcknowledge = 0x064
        case status = 0x070
        case queueDescriptorLow = 0x080, queueDescriptorHigh = 0x084
        case queueDriverLow = 0x090, queueDriverHigh = 0x094
        case queueDeviceLow = 0x0a0, queueDeviceHigh = 0x0a4
        case sharedMemorySelect = 0x0ac, sharedMemoryLengthLow = 0x0b0, sharedMemoryLengthHigh = 0x0b4
        case sharedMemoryBaseLow = 0x0b8, sharedMemoryBaseHigh = 0x0bc
        case configurationGeneration = 0x0fc
    }

    /// A transport for `device` whose queues live in `memory`, raising
    /// `interrupt` (none: the driver polls) and serving back ends on `eventLoop`.
    public init(
        device: any VirtioDevice, memory: GuestMemoryView, interrupt: (any VirtioInterrupt)?, eventLoop: EventLoop?
    ) throws(EventLoopError) {
        self.device = device
        self.memory = memory
        self.interrupt = interrupt
        self.eventLoop = eventLoop
        var notifiers: [EventNotifier] = []
        for _ in device.queueSizes { notifiers.append(try EventNotifier()) }
        self.notifiers = notifiers
        registers.queues = Array(repeating: QueueRegisters(), count: device.queueSizes.count)
    }

    /// The features offered: the device's and the transport's.
    public var offeredFeatures: VirtioFeatures { device.features.union(.transport) }

    /// The status register, for tests and reports.
    public var status: VirtioStatus { lock.withLock { _ in registers.status } }

    /// Whether the driver has brought the device up and it has not failed.
    public var isActive: Bool { lock.withLock { _ in active != nil } }

    // MARK: MMIODevice

    public func read(offset: UInt64, size: Int) -> UInt64 {
        if offset >= Self.configurationOffset { return readConfiguration(offset - Self.configurationOffset, size: size) }
        guard size == 4, offset % 4 == 0, let register = Register(rawValue: offset) else { return 0 }
        switch register {
        case .magic: return UInt64(Self.magic)
        case .version: return 2
        case .deviceID: return UInt64(device.type.rawValue)
        case .vendorID: return UInt64(Self.vendorID)
        case .interruptStatus: return UInt64(interruptStatus.load(ordering: .acquiring))
        case .configurationGeneration: return UInt64(configurationGeneration.load(ordering: .acquiring))
        // No shared memory regions: a length of all ones says so.
        case .sharedMemoryLengthLow, .sharedMemoryLengthHigh, .sharedMemoryBaseLow, .sharedMemoryBaseHigh: return 0xffff_ffff
        default: break
        }
        return lock.withLock { _ in UInt64(readLocked(register)) }
    }

    private func readLocked(_ register: Register) -> UInt32 {
        let queue = Int(registers.queueSelect)
        let hasQueue = queue < registers.queues.count
        switch register {
        case .deviceFeatures:
            let features = offeredFeatures.rawValue
            switch registers.deviceFeaturesSelect {
            case 0: return UInt32(truncatingIfNeeded: features)
            case 1: return UInt32(truncatingIfNeeded: features >> 32)
            default: return 0
            }
        case .queueSizeMaximum: return hasQueue ? UInt32(device.queueSizes[queue]) : 0
        case .queueSize: return hasQueue ? UInt32(registers.queues[queue].size) : 0
        case .queueReady: return hasQueue && registers.queues[queue].ready ? 1 : 0
        case .status: return registers.status.rawValue
        case .queueDescriptorLow: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].descriptorTable) : 0
        case .queueDescriptorHigh: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].descriptorTable >> 32) : 0
        case .queueDriverLow: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].availableRing) : 0
        case .queueDriverHigh: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].availableRing >> 32) : 0
        case .queueDeviceLow: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].usedRing) : 0
        case .queueDeviceHigh: return hasQueue ? UInt32(truncatingIfNeeded: registers.queues[queue].usedRing >> 32) : 0
        default: return 0
        }
    }

    public func write(offset: UInt64, size: Int, value: UInt64) -> DeviceRequest? {
        if offset >= Self.configurationOffset {
            writeConfiguration(offset - Self.configurationOffset, size: size, value: value)
            return nil
        }
        guard size == 4, offset % 4 == 0, let register = Register(rawValue: offset) else { return nil }
        let value = UInt32(truncatingIfNeeded: value)
        switch register {
        case .queueNotify:
            // Any queue index the device has wakes its I/O; others are ignored.
            if Int(value) < notifiers.count { notifiers[Int(value)].signal() }
        case .interruptAcknowledge:
            interruptStatus.bitwiseAnd(~value, ordering: .acquiringAndReleasing)
        default:
            lock.withLock { _ in writeLocked(register, value) }
        }
        return nil
    }

    private func writeLocked(_ register: Register, _ value: UInt32) {
        let queue = Int(registers.queueSelect)
        // Queue setup is for a driver between FEATURES_OK and DRIVER_OK, on a queue not yet ready.
        let canSetUpQueue =
            queue < registers.queues.count && !registers.queues[queue].ready && !registers.status.contains(.driverOK)
        func setQueue(_ update: (inout QueueRegisters) -> Void) {
            if canSetUpQueue { update(&registers.queues[queue]) }
        }
        func low(_ old: UInt64) -> UInt64 { (old & 0xffff_ffff_0000_0000) | UInt64(value) }
        func high(_ old: UInt64) -> UInt64 { (old & 0xffff_ffff) | UInt64(value) << 32 }
        switch register {
        case .deviceFeaturesSelect: registers.deviceFeaturesSelect = value
        case .driverFeaturesSelect: registers.driverFeaturesSelect = value
        case .driverFeatures:
            // Features are fixed once FEATURES_OK is set.
            guard !registers.status.contains(.featuresOK) else { return }
            switch registers.driverFeaturesSelect {
            case 0: registers.driverFeatures = (registers.driverFeatures & 0xffff_ffff_0000_0000) | UInt64(value)
            case 1: registers.driverFeatures = (registers.driverFeatures & 0xffff_ffff) | UInt64(value) << 32
            default: break
            }
        case .queueSelect: registers.queueSelect = value
        case .queueSize: setQueue { $0.size = UInt16(truncatingIfNeeded: value) }
        case .queueReady: setReady(queue: queue, value == 1)
        case .queueDescriptorLow: setQueue { $0.descriptorTable = low($0.descriptorTable) }
        case .queueDescriptorHigh: setQueue { $0.descriptorTable = high($0.descriptorTable) }
        case .queueDriverLow: setQueue { $0.availableRing = low($0.availableRing) }
        case .queueDriverHigh: setQueue { $0.availableRing = high($0.availableRing) }
        case .queueDeviceLow: setQueue { $0.usedRing = low($0.usedRing) }
        case .queueDeviceHigh: setQueue { $0.usedRing = high($0.usedRing) }
        case .status: writeStatus(VirtioStatus(rawValue: value))
        default: break
        }
    }

    /// QueueReady: 1 marks a queue ready (before DRIVER_OK); 0 takes it back.
    private func setReady(queue: Int, _ ready: Bool) {
        guard queue < registers.queues.count, !registers.status.contains(.driverOK) else { return }
        registers.queues[queue].ready = ready
    }

    /// The status state machine: 0 resets; otherwise bits are only added,
    /// FEATURES_OK only sticks for acceptable features, DRIVER_OK activates.
    private func writeStatus(_ new: VirtioStatus) {
        if new.rawValue == 0 {
            resetLocked()
            return
        }
        let old = registers.status
        // A driver may not clear bits except by a reset; keep NEEDS_RESET (ours).
        var status = old.union(new).subtracting(.needsReset).union(old.intersection(.needsReset))
        if new.contains(.featuresOK), !old.contains(.featuresOK) {
            let accepted = VirtioFeatures(rawValue: registers.driverFeatures)
            if !accepted.isSubset(of: offeredFeatures) || !accepted.contains(.version1) {
                status.remove(.featuresOK)
                report(
                    "driver accepted features \(hex(accepted.rawValue)) of \(hex(offeredFeatures.rawValue)) offered (VERSION_1 is required)"
                )
            }
        }
        if new.contains(.driverOK), !old.contains(.driverOK) {
            guard status.contains(.featuresOK), !status.contains(.needsReset) else {
                status.remove(.driverOK)
                registers.status = status
                return
            }
            registers.status = status
            activate()
            return
        }
        if new.contains(.failed) { deactivate() }
        registers.status = status
    }

    /// Builds the queue set from the ready queues and hands it to the device.
    private func activate() {
        let features = VirtioFeatures(rawValue: registers.driverFeatures)
        var queues: [Virtqueue?] = []
        do throws(VirtqueueError) {
            for (index, setup) in registers.queues.enumerated() {
                guard setup.ready else {
                    queues.append(nil)
                    continue
                }
                let layout = Virtqueue.Layout(
                    size: setup.size, descriptorTable: setup.descriptorTable, availableRing: setup.availableRing, usedRing: setup.usedRing)
                do {
                    queues.append(try Virtqueue(layout: layout, maximumSize: device.queueSizes[index], features: features, memory: memory))
                } catch {
                    throw .invalidLayout(detail: "queue \(index): \(error)")
                }
            }
            let set = makeQueueSet(features: features, queues: queues)
            try device.activate(set, link: VirtioDeviceLink(transport: self, eventLoop: eventLoop))
            active = set
        } catch {
            fail(error)
        }
    }

    private func makeQueueSet(features: VirtioFeatures, queues: [Virtqueue?]) -> VirtioQueueSet {
        VirtioQueueSet(memory: memory, features: features, queues: queues) { [weak self] in self?.raise(bit: 1) }
    }

    private func deactivate() {
        if active != nil { device.reset() }
        active = nil
    }

    private func resetLocked() {
        deactivate()
        registers = Registers()
        registers.queues = Array(repeating: QueueRegisters(), count: device.queueSizes.count)
        interruptStatus.store(0, ordering: .releasing)
    }

    /// A driver error: NEEDS_RESET, the device stops, the driver is told.
    private func fail(_ error: VirtqueueError) {
        deactivate()
        registers.status.insert(.needsReset)
        report("\(device.type.name): \(error); the device needs a reset")
        raise(bit: 2)
    }

    private func report(_ message: String) { onError?(message) }

    private func raise(bit: UInt32) {
        interruptStatus.bitwiseOr(bit, ordering: .acquiringAndReleasing)
        interrupt?.trigger()
    }

    // MARK: Configuration space

    private func readConfiguration(_ offset: UInt64, size: Int) -> UInt64 {
        guard (1...8).contains(size) else { return 0 }
        let bytes = lock.withLock { _ in device.configuration }
        guard offset < UInt64(bytes.count), offset + UInt64(size) <= UInt64(bytes.count) else { return 0 }
        var value: UInt64 = 0
        for i in 0..<size { value |= UInt64(bytes[Int(offset) + i]) << (8 * UInt64(i)) }
        return value
    }

    private func writeConfiguration(_ offset: UInt64, size: Int, value: UInt64) {
        guard (1...8).contains(size) else { return }
        lock.withLock { _ in
            let count = device.configuration.count
            guard offset < UInt64(count), offset + UInt64(size) <= UInt64(count) else { return }
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
            device.writeConfiguration(at: Int(offset), bytes: bytes)
        }
    }

    /// A new configuration generation and the configuration-change
    /// interrupt. Takes no lock, so a device may call it from anywhere.
    public func configurationChanged() {
        configurationGeneration.add(1, ordering: .acquiringAndReleasing)
        raise(bit: 2)
    }

    // MARK: The I/O thread's side

    /// Lets the device work on queue `index` (its notifier fired).
    public func processQueue(_ index: Int) {
        let device = self.device
        performOnActiveQueues { (queues: VirtioQueueSet) throws(VirtqueueError) -> Void in
            try device.process(queue: index, in: queues)
        }
    }

    /// Stops the device from touching guest memory or its back end until
    /// `resume()`: waits for work in progress, then ignores doorbells and
    /// back-end events, so that a snapshot sees RAM and queue indices that
    /// agree. Nests: each call needs its `resume()`.
    public func suspend() {
        lock.withLock { _ in suspensions += 1 }
    }

    /// Undoes one `suspend()`; after the last, each queue is looked at once,
    /// for the doorbells that rang meanwhile.
    public func resume() {
        let resumed = lock.withLock { _ in
            suspensions = max(0, suspensions - 1)
            return suspensions == 0
        }
        guard resumed else { return }
        for index in notifiers.indices { processQueue(index) }
    }

    func performOnActiveQueues(_ body: (VirtioQueueSet) throws(VirtqueueError) -> Void) {
        lock.withLock { (_: inout Void) -> Void in
            guard suspensions == 0, let active else { return }
            do throws(VirtqueueError) { try body(active) } catch { fail(error) }
        }
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

extension VirtioMMIOTransport {
    /// What a snapshot keeps of the transport: the registers, the running
    /// queues' indices, the interrupt status and the configuration generation.
    public struct State: Hashable, Sendable, Codable {
        var registers: Registers
        var queues: [Virtqueue.State?]
        var interruptStatus: UInt32
        var configurationGeneration: UInt32
    }

    /// The transport's state. The guest must not run meanwhile.
    public var state: State {
        lock.withLock { _ in
            State(
                registers: registers, queues: active?.states ?? [], interruptStatus: interruptStatus.load(ordering: .acquiring),
                configurationGeneration: configurationGeneration.load(ordering: .acquiring))
        }
    }

    /// Puts a saved state back, re-activating the device if the driver had.
    /// Every queue is checked against this device and guest RAM first; a
    /// state that does not fit is refused with the field named.
    public func restore(_ state: State) throws(DeviceStateError) {
        let name = "VirtioMMIOTransport(\(device.type.name))"
        let count = device.queueSizes.count
        guard state.registers.queues.count == count else {
            throw DeviceStateError(
                device: name, field: "registers.queues", problem: .wrongLength(count: state.registers.queues.count, expected: count))
        }
        let running = state.registers.status.contains(.driverOK) && !state.registers.status.contains(.needsReset)
        let features = VirtioFeatures(rawValue: state.registers.driverFeatures)
        var queues: [Virtqueue?] = []
        if running {
            guard state.queues.count == count else {
                throw DeviceStateError(device: name, field: "queues", problem: .wrongLength(count: state.queues.count, expected: count))
            }
            for (index, saved) in state.queues.enumerated() {
                guard let saved else {
                    queues.append(nil)
                    continue
                }
                do {
                    queues.append(try Virtqueue(state: saved, maximumSize: device.queueSizes[index], features: features, memory: memory))
                } catch {
                    throw DeviceStateError(device: name, field: "queues[\(index)]", problem: .inconsistent(detail: "\(error)"))
                }
            }
        }
        try lock.withLock { (_: inout Void) throws(DeviceStateError) -> Void in
            deactivate()
            registers = state.registers
            interruptStatus.store(state.interruptStatus, ordering: .releasing)
            configurationGeneration.store(state.configurationGeneration, ordering: .releasing)
            guard running else { return }
            let set = makeQueueSet(features: features, queues: queues)
            do { try device.activate(set, link: VirtioDeviceLink(transport: self, eventLoop: eventLoop)) } catch {
                throw DeviceStateError(device: name, field: "queues", problem: .inconsistent(detail: "\(error)"))
            }
            active = set
        }
    }
}

import Devices
import Logging
import Testing
import VMCore

@testable import SwiftVMM

/// A log handler that keeps messages so tests can count them.
final class RecordingLogHandler: LogHandler, @unchecked Sendable {
    final class Box: @unchecked Sendable { var messages: [String] = [] }
    let box: Box
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    init(box: Box) { self.box = box }
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { box.messages.append("\(event.level): \(event.message)") }
}

/// A dispatcher over the PC devices a `Machine` has, with made-up exits and no KVM.
struct DispatcherFixture {
    let output = SerialBufferOutput()
    let ports = PortIOBus()
    let mmio = MMIOBus()
    let log = RecordingLogHandler.Box()
    let serial: Serial16550
    let dispatcher: ExitDispatcher

    init() throws {
        serial = Serial16550(output: output)
        try ports.register(serial, at: PortMap.com1.base, length: PortMap.com1.length)
        try ports.register(PostCodePort(), at: PortMap.postCode.base, length: PortMap.postCode.length)
        try ports.register(DebugExitPort(), at: PortMap.debugExit.base, length: PortMap.debugExit.length)
        let box = log
        dispatcher = ExitDispatcher(ports: ports, mmio: mmio, logger: Logger(label: "test") { _ in RecordingLogHandler(box: box) })
    }
}

@Suite struct ExitDispatcherTests {
    @Test func serialWritesReachTheSinkUnchanged() throws {
        let f = try DispatcherFixture()
        for byte in Array("hi\n".utf8) + [0, 0xff] {
            #expect(f.dispatcher.handle(.ioOut(port: 0x3f8, size: 1, count: 1, data: IOData(value: UInt64(byte), size: 1))) == .resume)
        }
        #expect(f.output.bytes == Array("hi\n".utf8) + [0, 0xff])
    }

    @Test func stringOutputIsSplitIntoBytesInOrder() throws {
        let f = try DispatcherFixture()
        let text = Array("a longer line than eight bytes\n".utf8)
        #expect(f.dispatcher.handle(.ioOut(port: 0x3f8, size: 1, count: UInt32(text.count), data: IOData(bytes: text))) == .resume)
        #expect(f.output.bytes == text)
    }

    @Test(arguments: [(1, 0x1_01 as UInt64, 0x01 as UInt32), (2, 0x2_34, 0x234), (4, 0x1234_5678, 0x1234_5678)])
    func debugExitStopsWithTheValueWritten(size: Int, value: UInt64, status: UInt32) throws {
        let f = try DispatcherFixture()
        let action = f.dispatcher.handle(.ioOut(port: 0xf4, size: UInt8(size), count: 1, data: IOData(value: value, size: size)))
        #expect(action == .stop(.debugExit(status: status)))
        #expect(StopReason.debugExit(status: status).exitStatus == Int32(status & 0xff))
    }

    @Test func readingTheLineStatusSaysTheTransmitterIsEmpty() throws {
        let f = try DispatcherFixture()
        guard case .completeRead(let data) = f.dispatcher.handle(.ioIn(port: 0x3fd, size: 1, count: 1)) else {
            Issue.record("an IN must be answered")
            return
        }
        #expect(data.count == 1)
        #expect(data.value & 0b0110_0000 == 0b0110_0000, "THRE and TEMT")
    }

    @Test func postCodesAreAcceptedSilently() throws {
        let f = try DispatcherFixture()
        #expect(f.dispatcher.handle(.ioOut(port: 0x80, size: 1, count: 1, data: IOData(value: 0x55, size: 1))) == .resume)
        #expect(f.log.messages.isEmpty)
        #expect(f.ports.unclaimedWrites == 0)
    }

    @Test func unknownPortsReadAllOnesAndAreLoggedOncePerPort() throws {
        let f = try DispatcherFixture()
        #expect(f.dispatcher.handle(.ioIn(port: 0x1234, size: 2, count: 1)) == .completeRead(IOData(value: 0xffff, size: 2)))
        #expect(f.dispatcher.handle(.ioIn(port: 0x1234, size: 4, count: 1)) == .completeRead(IOData(value: 0xffff_ffff, size: 4)))
        #expect(f.dispatcher.handle(.ioOut(port: 0x1234, size: 1, count: 1, data: IOData(value: 1, size: 1))) == .resume)
        #expect(f.dispatcher.handle(.ioOut(port: 0x1235, size: 1, count: 1, data: IOData(value: 1, size: 1))) == .resume)
        #expect(f.log.messages.count == 2)
        #expect(f.log.messages.first?.contains("0x1234") == true)
        #expect(f.ports.unclaimedReads == 2 && f.ports.unclaimedWrites == 2)
    }

    @Test func mmioWithNothingBehindItReadsAllOnesAndIsLoggedOncePerPage() throws {
        let f = try DispatcherFixture()
        #expect(
            f.dispatcher.handle(.mmioRead(address: GuestAddress(0xd000_0000), size: 4))
                == .completeRead(IOData(value: 0xffff_ffff, size: 4)))
        #expect(f.dispatcher.handle(.mmioWrite(address: GuestAddress(0xd000_0ff8), data: IOData(value: 7, size: 8))) == .resume)
        #expect(f.dispatcher.handle(.mmioRead(address: GuestAddress(0xd000_1000), size: 8)) == .completeRead(IOData(value: .max, size: 8)))
        #expect(f.log.messages.count == 2)
    }

    @Test func fatalExitsStopWithTheirReason() throws {
        let f = try DispatcherFixture()
        #expect(f.dispatcher.handle(.halt) == .halt)
        #expect(f.dispatcher.handle(.shutdown) == .stop(.shutdown))
        #expect(f.dispatcher.handle(.internalError(suberror: 1, data: [3])) == .stop(.internalError(suberror: 1, data: [3])))
        #expect(f.dispatcher.handle(.failEntry(hardwareReason: 0x21, cpu: 0)) == .stop(.failEntry(hardwareReason: 0x21)))
        #expect(f.dispatcher.handle(.systemEvent(.reset, flags: [])) == .stop(.reset))
        #expect(f.dispatcher.handle(.systemEvent(.shutdown, flags: [])) == .stop(.powerOff))
        #expect(f.dispatcher.handle(.interrupted) == .stop(.interrupted))
        #expect(f.dispatcher.handle(.unknown(reason: 99, hardwareReason: 0)) == .stop(.unhandled(.unknown(reason: 99, hardwareReason: 0))))
    }

    @Test func stopReasonsMapToTheDocumentedExitStatus() {
        #expect(StopReason.halted(interruptsEnabled: false).exitStatus == 0)
        #expect(StopReason.halted(interruptsEnabled: true).exitStatus != 0)
        #expect(StopReason.shutdown.exitStatus != 0 && StopReason.shutdown.isFailure)
        #expect(StopReason.internalError(suberror: 1, data: []).exitStatus != 0)
        #expect(StopReason.debugExit(status: 0x1ff).exitStatus == 0xff)
        #expect(!StopReason.debugExit(status: 3).isFailure)
    }
}

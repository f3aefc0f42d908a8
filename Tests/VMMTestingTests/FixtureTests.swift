import Devices
import Firmware
import Foundation
import GuestMemory
import HostSupport
import SwiftVMM
import Testing
import VMCore
import VMMTesting

/// `firmware/longmode/slow-boot.S`'s contract, computed on the host.
enum SlowBoot {
    static let table: UInt64 = 0x20_0000
    static let entries = 16384
    static let runs: UInt64 = 0x21_0000
    static let lastInput: UInt64 = 0x21_0008
    static let lastResult: UInt64 = 0x21_0010
    static let perInput: UInt64 = 0x22_0000
    static let readyCall: UInt32 = 0x100
    static let exitStatus: UInt32 = 0x42

    /// The table the guest builds while it boots: t[i] = fmix32(t[i-1] ^ i).
    static let expectedTable: [UInt32] = {
        var table: [UInt32] = []
        var h: UInt32 = 0
        for i in 0..<UInt32(entries) {
            h ^= i
            h ^= h >> 16
            h &*= 0x85eb_ca6b
            h ^= h >> 13
            h &*= 0xc2b2_ae35
            h ^= h >> 16
            table.append(h)
        }
        return table
    }()

    static func f(_ input: UInt64) -> UInt32 { expectedTable[Int(input & UInt64(entries - 1))] &+ UInt32(truncatingIfNeeded: input) }

    /// The line a run prints.
    static func line(run: Int, input: UInt64) -> String {
        "run \(hex2(UInt64(run))): f(\(hex8(input))) = \(hex8(UInt64(f(input))))\n"
    }

    static func hex2(_ v: UInt64) -> String { String(format: "%02llx", v & 0xff) }
    static func hex8(_ v: UInt64) -> String { String(format: "%08llx", v & 0xffff_ffff) }

    /// Boots to the `ready` hypercall: the fixture point of these tests.
    static func fixture(booted: ThreadLock<Int>? = nil) throws -> TestVMFixture {
        try TestVMFixture(FirmwareImage.longSlowBoot) { vm in
            booted?.withLock { $0 += 1 }
            // The tests check that it is the ready call (image.hypercalls).
            _ = try vm.runUntilHypercall(timeout: .seconds(30))
        }
    }

    /// Serves `input` in `vm` (at the fixture point) and checks all the guest leaves behind.
    static func serve(_ input: UInt64, in vm: TestVM, comment: Comment? = nil) throws {
        try vm.modifyRegisters { $0.rax = input }
        #expect(try vm.runToCompletion() == .debugExit(status: exitStatus), comment)
        #expect(vm.serialText == line(run: 1, input: input), comment)
        let registers = try vm.registers()
        #expect(registers.rbx == UInt64(f(input)) && registers.r12 == input, comment)
        #expect(try vm.readInteger(at: runs, as: UInt64.self) == 1, comment)
        #expect(try vm.readInteger(at: lastInput, as: UInt64.self) == input, comment)
        #expect(try vm.readInteger(at: perInput + (input & 0xf) * 0x1000, as: UInt64.self) == UInt64(f(input)), comment)
    }
}

/// Snapshot fixtures: a guest booted once, each test given a fresh copy by a
/// clone or a reset. Serialized, because several tests measure or count; the
/// parallel test makes its own threads.
@Suite(.serialized) struct FixtureTests {
    // MARK: The guest

    @Test func theSlowBootGuestBuildsItsTableSaysReadyAndServesOneInput() throws {
        let vm = try TestVM(FirmwareImage.longSlowBoot)
        let clock = ContinuousClock()
        var call: Hypercall?
        let boot = try clock.measure { call = try vm.runUntilHypercall(timeout: .seconds(30)) }
        print("slow-boot: boot to the ready hypercall took \(boot), \(vm.trace.count) exits")
        #expect(call == .request(number: SlowBoot.readyCall, arguments: [SlowBoot.table, UInt64(SlowBoot.entries), 0, 0]))
        #expect(vm.serialText == "slow-boot: building table\nslow-boot: ready\n")
        let table = try vm.read(count: SlowBoot.entries * 4, at: SlowBoot.table)
        let words = stride(from: 0, to: table.count, by: 4).map {
            UInt32(table[$0]) | UInt32(table[$0 + 1]) << 8 | UInt32(table[$0 + 2]) << 16 | UInt32(table[$0 + 3]) << 24
        }
        #expect(words == SlowBoot.expectedTable)
        try vm.answer(0x1234_5678_9abc)
        #expect(try vm.runToCompletion() == .debugExit(status: SlowBoot.exitStatus))
        #expect(vm.serialText.hasSuffix(SlowBoot.line(run: 1, input: 0x1234_5678_9abc)), "\(vm.serialText)")
        #expect(try vm.registers().rbx == UInt64(SlowBoot.f(0x1234_5678_9abc)))
    }

    // MARK: One boot, many tests

    @Test func theFixturePointIsReachedOnceAndAHundredTestsEachGetTheSameFreshVM() throws {
        let boots = ThreadLock(0)
        let clock = ContinuousClock()
        var fixture: TestVMFixture?
        let bootTime = try clock.measure { fixture = try SlowBoot.fixture(booted: boots) }
        let image = try #require(fixture).image
        #expect(image.serialText == "slow-boot: building table\nslow-boot: ready\n")
        #expect(image.hypercalls == [.request(number: SlowBoot.readyCall, arguments: [SlowBoot.table, UInt64(SlowBoot.entries), 0, 0])])
        let reference = try #require(fixture).clone()
        let registers = try reference.registers()
        let special = try reference.specialRegisters()
        #expect(registers.rax == 0, "the snapshot answered the pending ready hypercall with 0")

        let tests = try clock.measure {
            for input in 0..<UInt64(100) {
                try #require(fixture).withFreshVM { vm in
                    // Identical state at the fixture point, whatever the previous test did.
                    #expect(vm.serialText.isEmpty && vm.hypercalls.isEmpty && vm.trace.count == 0 && vm.pendingExit == nil)
                    #expect(try vm.registers() == registers, "test \(input)")
                    #expect(try vm.specialRegisters() == special, "test \(input)")
                    #expect(try vm.readInteger(at: SlowBoot.runs, as: UInt64.self) == 0, "test \(input)")
                    #expect(try vm.machine.memory.matches(image.machine.memory), "test \(input)")
                    try SlowBoot.serve(input * 0x1_0001, in: vm, comment: "test \(input)")
                }
            }
        }
        let statistics = try #require(fixture).statistics
        #expect(boots.withLock { $0 } == 1)
        // One clone for `reference`, one for the pool; every later test reuses it.
        #expect(statistics.clones == 2 && statistics.resets == 99 && statistics.discarded == 0, "\(statistics)")
        print(
            "fixture: boot \(bootTime); 100 reset-per-test runs \(tests) (\(tests / 100) each), \(statistics.pagesRestored / 99) pages restored per reset"
        )
    }

    @Test func clonePerTestAndResetPerTestSeeTheSameAndTheirCostIsMeasured() throws {
        let fixture = try SlowBoot.fixture()
        let clock = ContinuousClock()
        var clones: [TestVM] = []
        let cloning = try clock.measure {
            for _ in 0..<20 { clones.append(try fixture.clone()) }
        }
        for (index, vm) in clones.enumerated() { try SlowBoot.serve(UInt64(index), in: vm, comment: "clone \(index)") }
        let vm = try fixture.clone()
        var resetting = Duration.zero
        for index in 0..<20 {
            try SlowBoot.serve(UInt64(index), in: vm, comment: "reset \(index)")
            resetting += try clock.measure { try vm.reset(to: fixture.image) }
        }
        print("fixture: a clone takes \(cloning / 20), a reset \(resetting / 20)")
        #expect(fixture.statistics.clones == 21)
    }

    // MARK: What a reset puts back

    @Test func aResetPutsBackExactlyThePagesTheGuestAndTheTestDirtied() throws {
        let fixture = try SlowBoot.fixture()
        let image = fixture.image
        let vm = try fixture.clone()
        #expect(try vm.machine.memory.matches(image.machine.memory), "a clone starts as the image")
        // Nothing written, nothing to put back.
        #expect(try vm.reset(to: image).pagesRestored == 0)

        try SlowBoot.serve(7, in: vm)
        // The test's own writes: a page the guest never touches, and the guest's table.
        try vm.write(Array(repeating: 0x5a, count: 3 * 4096), at: 0x50_0000)
        try vm.writeInteger(UInt32(0xdead_beef), at: SlowBoot.table + 8)
        #expect(try !vm.machine.memory.matches(image.machine.memory))
        // The pages that differ from the image's, found by comparing all of RAM with a pristine clone's.
        let pageSize = 4096
        let ramSize = Int(vm.machine.hardware.memorySize)
        let pristine = try fixture.clone().read(count: ramSize, at: 0)
        let dirtied = try vm.read(count: ramSize, at: 0)
        let differing = Set(
            (0..<ramSize / pageSize).filter { page in
                pristine[page * pageSize..<(page + 1) * pageSize] != dirtied[page * pageSize..<(page + 1) * pageSize]
            })
        let testPages: Set = [0x500, 0x501, 0x502, 0x200]
        let guestPages: Set = [Int(SlowBoot.runs / 4096), Int((SlowBoot.perInput + 7 * 0x1000) / 4096)]
        #expect(differing.isSuperset(of: testPages.union(guestPages)), "\(differing.sorted().map { hex(UInt64($0 * pageSize)) })")

        let statistics = try vm.reset(to: image)
        print("reset: \(statistics.pagesRestored) pages put back, \(differing.count) differed from the image")
        #expect(try vm.machine.memory.matches(image.machine.memory), "every page is the image's again")
        #expect(try vm.read(count: 3 * 4096, at: 0x50_0000) == Array(repeating: 0, count: 3 * 4096))
        #expect(try vm.readInteger(at: SlowBoot.table + 8, as: UInt32.self) == SlowBoot.expectedTable[2])
        // Exactly the written pages: those that differ, and at most the
        // guest's stack page besides (written with what it held before).
        #expect(
            statistics.pagesRestored >= differing.count && statistics.pagesRestored <= differing.count + 1,
            "\(statistics), differing: \(differing.sorted().map { hex(UInt64($0 * pageSize)) })")
        try SlowBoot.serve(9, in: vm)
    }

    @Test func registersAndMSRsATestChangesDoNotLeakIntoTheNextTest() throws {
        let fixture = try SlowBoot.fixture()
        let reference = try fixture.clone()
        let registers = try reference.registers()
        let kernelGSBase: UInt32 = 0xc000_0102
        let msr = try reference.msrs([kernelGSBase])
        try fixture.withFreshVM { vm in
            try vm.modifyRegisters {
                $0.r15 = 0xdead_beef
                $0.rsp = 0x8000
                $0.rax = 3
            }
            try vm.setMSRs([(kernelGSBase, 0x1234_5000)])
            var special = try vm.specialRegisters()
            special.cr0 |= 1 << 16  // write protect
            try vm.setSpecialRegisters(special)
            try vm.writeInteger(UInt64(5), at: SlowBoot.runs)
        }
        try fixture.withFreshVM { vm in
            #expect(try vm.registers() == registers)
            #expect(try vm.msrs([kernelGSBase]) == msr)
            #expect(try vm.specialRegisters() == reference.specialRegisters())
            try SlowBoot.serve(3, in: vm)  // prints run 01, not run 06
        }
        #expect(fixture.statistics.resets == 1)
    }

    @Test func aResetClearsThePendingExitTheTraceAndTheOutputButKeepsTheHandler() throws {
        let fixture = try SlowBoot.fixture()
        let vm = try fixture.clone()
        var asked = 0
        vm.onHypercall { _ in
            asked += 1
            return nil
        }
        try vm.modifyRegisters { $0.rax = 1 }
        try vm.run(until: .ioOut(port: 0x3f8))
        #expect(vm.pendingExit != nil && vm.trace.count > 0)
        try vm.reset(to: fixture.image)
        #expect(vm.pendingExit == nil && vm.trace.count == 0 && vm.serialText.isEmpty)
        try SlowBoot.serve(2, in: vm)
        #expect(asked == 0, "the guest makes no hypercall after the fixture point")
    }

    // MARK: Pending exits

    @Test func aSnapshotWithAnUnansweredReadPendingIsRefusedWithTheReason() throws {
        let vm = try TestVM(FirmwareImage.realSerialIn)
        #expect(try vm.run(until: .ioIn(port: 0x3fd)) == .ioIn(port: 0x3fd, size: 1, count: 1))
        do {
            _ = try vm.snapshot()
            Issue.record("snapshot() with a pending read succeeded")
        } catch {
            #expect("\(error)".contains("unanswered 1-byte IN from port 0x3fd"), "\(error)")
            #expect("\(error)".contains("answer(_:)"), "\(error)")
        }
        // Answered (LSR: no data ready), the snapshot is of the guest after the read.
        try vm.answer(0x60)
        let image = try vm.snapshot()
        for _ in 0..<3 {
            let copy = try TestVM(clone: image)
            #expect(try copy.runToCompletion() == .debugExit(status: 3))
            #expect(copy.serialText == "no input\n")
        }
    }

    @Test func aResetWhileAnAccessIsPendingStartsCleanFromTheImage() throws {
        // The fixture point: the serial-input guest before its first instruction.
        let fixture = try TestVMFixture(FirmwareImage.realSerialIn) { _ in }
        let vm = try fixture.clone()
        // An IN left unanswered, an IN answered, an OUT half done: each reset drops it.
        #expect(try vm.run(until: .ioIn(port: 0x3fd)) == .ioIn(port: 0x3fd, size: 1, count: 1))
        try vm.reset(to: fixture.image)
        vm.typeSerial("ab\n")
        #expect(try vm.run(until: .ioIn(port: 0x3fd)) == .ioIn(port: 0x3fd, size: 1, count: 1))
        try vm.answer(0)
        try vm.reset(to: fixture.image)
        vm.typeSerial("cd\n")
        try vm.run(until: .ioOut(port: 0x3f8))
        try vm.reset(to: fixture.image)
        vm.typeSerial("hello\n")
        #expect(try vm.runToCompletion() == .debugExit(status: 0))
        #expect(vm.serialText == "HELLO\n")
        #expect(vm.machine.serial.inputSpace == 64, "the FIFO is empty again")
    }

    // MARK: Device state

    @Test func aPITDrivenGuestContinuesIdenticallyFromItsFixturePoint() throws {
        let whole = try TestVM(FirmwareImage.protectedTicker, platform: .pc)
        #expect(try whole.runToCompletion(timeout: .seconds(30)) == .debugExit(status: 0x30))
        let fixture = try TestVMFixture(FirmwareImage.protectedTicker, platform: .pc) { vm in
            try vm.run(untilOutputContains: "tick 05", timeout: .seconds(30))
        }
        #expect(fixture.image.serialText.hasSuffix("tick 05"))
        for copy in 0..<4 {
            try fixture.withFreshVM { vm in
                let reason = try vm.runToCompletion(timeout: .seconds(30))
                #expect(reason == .debugExit(status: 0x30), "copy \(copy)")
                #expect(fixture.image.serialText + vm.serialText == whole.serialText, "copy \(copy)")
            }
        }
        let clone = try fixture.clone()
        #expect(try clone.runToCompletion(timeout: .seconds(30)) == .debugExit(status: 0x30))
        #expect(fixture.image.serialText + clone.serialText == whole.serialText)
    }

    // MARK: Parallel tests

    @Test func parallelCallersEachGetAVMOfTheirOwnAndDoNotInterfere() throws {
        let fixture = try SlowBoot.fixture()
        let inUse = ThreadLock<Set<ObjectIdentifier>>([])
        let failures = ThreadLock<[String]>([])
        let threads = try (0..<4).map { thread in
            try HostThread.spawn(name: "fixture \(thread)") {
                for round in 0..<10 {
                    let input = UInt64(thread * 100 + round)
                    do {
                        if round % 2 == 0 {
                            let vm = try fixture.clone()
                            try vm.modifyRegisters { $0.rax = input }
                            let reason = try vm.runToCompletion(timeout: .seconds(30))
                            if reason != .debugExit(status: SlowBoot.exitStatus) || vm.serialText != SlowBoot.line(run: 1, input: input) {
                                failures.withLock { $0.append("clone \(input): \(reason) \(vm.serialText)") }
                            }
                        } else {
                            try fixture.withFreshVM { vm in
                                let id = ObjectIdentifier(vm)
                                if !inUse.withLock({ $0.insert(id).inserted }) {
                                    failures.withLock { $0.append("a VM handed to two callers at once") }
                                }
                                defer { _ = inUse.withLock { $0.remove(id) } }
                                try vm.modifyRegisters { $0.rax = input }
                                let reason = try vm.runToCompletion(timeout: .seconds(30))
                                let result = try vm.readInteger(at: SlowBoot.lastResult, as: UInt64.self)
                                if reason != .debugExit(status: SlowBoot.exitStatus) || vm.serialText != SlowBoot.line(run: 1, input: input)
                                    || result != UInt64(SlowBoot.f(input))
                                {
                                    failures.withLock { $0.append("fresh VM \(input): \(reason) \(vm.serialText)") }
                                }
                            }
                        }
                    } catch { failures.withLock { $0.append("\(input): \(error)") } }
                }
            }
        }
        for thread in threads { thread.join() }
        #expect(failures.withLock { $0 } == [])
        let statistics = fixture.statistics
        // 20 clones of clone(), at most one pooled VM per thread.
        #expect(statistics.clones >= 21 && statistics.clones <= 24, "\(statistics)")
        #expect(statistics.clones - 20 + statistics.resets == 20, "\(statistics)")
    }

    // MARK: Wrapping machines

    @Test func aMachineWhoseSerialGoesToABufferBecomesATestVM() throws {
        let fixture = try SlowBoot.fixture()
        let output = SerialBufferOutput()
        let machine = try Machine.clone(fixture.image.machine, io: MachineIO(serialOutput: output))
        let vm = try TestVM(machine: machine)
        #expect(vm.serialOutput === output)
        try SlowBoot.serve(11, in: vm)
        #expect(output.text == SlowBoot.line(run: 1, input: 11))

        let elsewhere = try Machine.clone(fixture.image.machine, io: MachineIO(serialOutput: FileSerialOutput.standardOutput()))
        #expect(throws: VMTestError.self) { try TestVM(machine: elsewhere) }
        let booted = try TestVM(FirmwareImage.longHello)
        do {
            try booted.reset(to: fixture.image)
            Issue.record("a VM that is not a clone was reset")
        } catch { #expect("\(error)".contains("TestVM(clone:)"), "\(error)") }
    }

    @Test func scriptedDevicesStayOnAResetVMSoTheFixtureDoesNotReuseIt() throws {
        let fixture = try SlowBoot.fixture()
        var seen: [UInt8] = []
        try fixture.withFreshVM { vm in
            try vm.onPorts(0x3f8...0x3ff) { access in
                if case .write(0x3f8, _, let value) = access { seen.append(UInt8(truncatingIfNeeded: value)) }
                return nil
            }
            #expect(vm.hasScriptedDevices)
            try vm.modifyRegisters { $0.rax = 1 }
            #expect(try vm.runToCompletion() == .debugExit(status: SlowBoot.exitStatus))
            #expect(vm.serialText.isEmpty, "the scripted COM1 got the output")
        }
        #expect(String(decoding: seen, as: UTF8.self) == SlowBoot.line(run: 1, input: 1))
        try fixture.withFreshVM { vm in
            #expect(!vm.hasScriptedDevices)
            try SlowBoot.serve(1, in: vm)
        }
        #expect(fixture.statistics.discarded == 1 && fixture.statistics.clones == 2, "\(fixture.statistics)")
    }
}

/// The README's pattern: one fixture for the suite, booted by whichever test
/// comes first, and a hundred test cases that Swift Testing runs in parallel,
/// each with a fresh VM.
struct FixturePerSuiteTests {
    static let boots = ThreadLock(0)
    static let fixture = Result { try SlowBoot.fixture(booted: boots) }

    @Test(arguments: 0..<100) func eachCaseGetsAFreshVMAtTheFixturePoint(input: UInt64) throws {
        let fixture = try Self.fixture.get()
        #expect(Self.boots.withLock { $0 } == 1, "booted once, whatever ran first")
        if input % 10 == 0 {
            let vm = try fixture.clone()
            try SlowBoot.serve(input, in: vm)
        } else {
            try fixture.withFreshVM { vm in try SlowBoot.serve(input, in: vm) }
        }
    }
}

extension FixtureTests {
    // MARK: Other fixture points

    @Test func aFixtureTakenAtABreakpointStartsAfterTheInstructionThere() throws {
        // Where the guest resumes after its ready hypercall: `mov %rax, %r12`,
        // then `incq RUNS` (3 bytes on).
        let probe = try TestVM(FirmwareImage.longSlowBoot)
        _ = try probe.runUntilHypercall(timeout: .seconds(30))
        let resume = try probe.registers().rip
        let fixture = try TestVMFixture(FirmwareImage.longSlowBoot) { vm in
            vm.onHypercall { _ in 0x77 }
            try vm.setBreakpoint(at: resume + 3)
            try vm.run(until: .debugTrap(at: resume + 3), timeout: .seconds(30))
            #expect(try vm.registers().r12 == 0x77)
        }
        // The snapshot stepped over the breakpoint: RUNS is incremented.
        #expect(try fixture.clone().readInteger(at: SlowBoot.runs, as: UInt64.self) == 1)
        for _ in 0..<3 {
            try fixture.withFreshVM { vm in
                #expect(try vm.registers().r12 == 0x77 && vm.registers().rip > resume + 3)
                #expect(vm.pendingExit == nil)
                let reason = try vm.runToCompletion()
                #expect(reason == .debugExit(status: SlowBoot.exitStatus))
                #expect(vm.serialText == SlowBoot.line(run: 1, input: 0x77))
            }
        }
    }

    @Test func aFixtureOfATwoVCPUGuestGivesEachTestAClone() throws {
        let fixture = try TestVMFixture(FirmwareImage.protectedSmp, vcpus: 2) { vm in
            // Both processors are up and counted.
            try vm.run(untilOutputContains: "smp: 02 cpus", timeout: .seconds(30))
        }
        #expect(fixture.image.serialText.contains("cpu 01 ap"))
        for copy in 0..<3 {
            try fixture.withFreshVM { vm in
                let reason = try vm.runToCompletion(timeout: .seconds(30))
                #expect(reason == .debugExit(status: 2), "copy \(copy)")
            }
        }
        // reset(to:) cannot put back a machine with two vCPUs: each use was a clone.
        #expect(fixture.statistics.clones == 3 && fixture.statistics.resets == 0, "\(fixture.statistics)")
        #expect(throws: VMTestError.self) { try fixture.clone().reset(to: fixture.image) }
    }
}

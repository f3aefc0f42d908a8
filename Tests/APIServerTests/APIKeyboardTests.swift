import Firmware
import Foundation
import Testing

/// `PUT /actions {"action_type": "SendCtrlAltDel"}` end to end: the keys go
/// through the i8042 to a guest that takes them on IRQ 1, prints each scan
/// code on COM1 and then resets the machine as Linux does on Ctrl-Alt-Del
/// with `reboot=k`; the process ends as Firecracker's does on a reset.
@Suite struct APIKeyboardTests {
    @Test func sendCtrlAltDelReachesTheGuestOnIRQ1AndItsResetEndsTheProcess() throws {
        let directory = try ScratchDirectory()
        let guest = try directory.write("keyboard.bin", FirmwareImage.protectedKeyboardIrq.bytes)
        let vmm = try ServedVMM(directory)
        #expect(try vmm.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try vmm.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try vmm.waitForOutput("kbd ready\n")
        #expect(vmm.stdout == "kbd ready\n", "no key before the action")
        let response = try vmm.put("/actions", #"{"action_type": "SendCtrlAltDel"}"#)
        #expect(response.status == 204, "\(response)")
        let status = try vmm.waitForExit()
        // Ctrl, Alt, Delete make codes in scan code set 2: 14, 11, e0 71.
        #expect(vmm.stdout == "kbd ready\nkey 14\nkey 11\nkey e0\nkey 71\nkbd reset\n", "\(vmm.stderr)")
        #expect(status == 0, "\(vmm.stderr)")
        #expect(vmm.stderr.contains("guest reset the machine"), "\(vmm.stderr)")
    }

    @Test func keysSentWhilePausedArriveOnResume() throws {
        let directory = try ScratchDirectory()
        let guest = try directory.write("keyboard.bin", FirmwareImage.protectedKeyboardIrq.bytes)
        let vmm = try ServedVMM(directory)
        #expect(try vmm.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try vmm.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        try vmm.waitForOutput("kbd ready\n")
        #expect(try vmm.patch("/vm", #"{"state": "Paused"}"#).status == 204)
        #expect(try vmm.put("/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        usleep(100_000)
        #expect(vmm.stdout == "kbd ready\n", "a paused guest takes no interrupt")
        #expect(try vmm.patch("/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(try vmm.waitForExit() == 0, "\(vmm.stderr)")
        #expect(vmm.stdout == "kbd ready\nkey 14\nkey 11\nkey e0\nkey 71\nkbd reset\n", "\(vmm.stderr)")
    }
}

/// `swiftvmm serve --boot-timer`, as Firecracker is launched for boot-time measurements.
@Suite struct APIBootTimerTests {
    @Test func serveWithBootTimerPrintsTheGuestsBootTime() throws {
        let directory = try ScratchDirectory()
        let guest = try directory.write("boot-timer.bin", FirmwareImage.protectedBootTimer.bytes)
        let vmm = try ServedVMM(directory, extraArguments: ["--boot-timer"])
        #expect(try vmm.put("/x-swiftvmm", #"{"guest": "\#(guest)", "mode": "protected"}"#).status == 204)
        #expect(try vmm.put("/actions", #"{"action_type": "InstanceStart"}"#).status == 204)
        #expect(try vmm.waitForExit() == 0, "\(vmm.stderr)")
        #expect(vmm.stdout == "boot timer\n")
        #expect(vmm.stderr.contains(#/Guest-boot-time = +\d+ us \d+ ms, +\d+ CPU us \d+ CPU ms/#), "\(vmm.stderr)")
    }
}

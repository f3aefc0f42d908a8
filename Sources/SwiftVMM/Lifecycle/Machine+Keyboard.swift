import Devices

// Keys typed on the PC's i8042 from outside the guest: Firecracker's
// `SendCtrlAltDel` action, which asks a Linux guest to reboot (with
// `reboot=k`, Linux then pulses the i8042's reset line and the run ends).

extension Machine {
    /// Presses Ctrl, Alt and Delete on the PC's i8042 keyboard, as
    /// Firecracker's `SendCtrlAltDel` does: the make codes go into the
    /// controller's keyboard queue and the guest reads them at port 0x60,
    /// with IRQ1 when its command byte enables the keyboard interrupt.
    ///
    /// Safe from any thread but a vCPU's own: the devices belong to the vCPU
    /// threads, so a running machine is paused for the moment it takes.
    ///
    /// - Throws: `.wrongPlatform` on the minimal platform (no i8042);
    ///   `.keyboardBufferFull` when the guest has not read earlier keys.
    public func sendCtrlAltDel() throws(MachineError) {
        guard let i8042 = devices.pc?.i8042 else { throw .wrongPlatform(operation: "sending Ctrl-Alt-Del", needs: .pc) }
        let state = runState
        let mustPause = state == .running || state == .notStarted
        if mustPause { pause() }
        defer { if mustPause { resume() } }
        do { try i8042.sendCtrlAltDel() } catch { throw .keyboardBufferFull(error) }
    }
}

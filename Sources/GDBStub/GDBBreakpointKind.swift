/// The kinds of `Z`/`z` packet.
public enum GDBBreakpointKind: Int, Hashable, Sendable {
    /// `Z0`: a software breakpoint.
    case software = 0
    /// `Z1`: a hardware execution breakpoint.
    case hardware = 1
    /// `Z2`: a write watchpoint.
    case writeWatchpoint = 2
    /// `Z3`: a read watchpoint (x86 debug registers cannot watch reads alone).
    case readWatchpoint = 3
    /// `Z4`: an access (read or write) watchpoint.
    case accessWatchpoint = 4
}

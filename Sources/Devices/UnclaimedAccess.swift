/// Whether an access found no device, and if so whether it is the first such
/// access to that port (or MMIO page).
///
/// The bus only reports; the caller decides what to log. A dispatcher that
/// logs `.firstTime` at warning level and `.again` at trace level keeps a guest
/// that polls an absent port from flooding the log.
public enum UnclaimedAccess: Hashable, Sendable {
    /// A device handled the access.
    case no
    /// No device handled it, and this is the first unclaimed access to the
    /// port or page since the bus was created.
    case firstTime
    /// No device handled it, and the port or page has been missed before.
    case again

    /// Whether no device handled the access.
    @inlinable public var isUnclaimed: Bool { self != .no }
}

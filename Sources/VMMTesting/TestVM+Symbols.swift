extension TestVM {
    /// A hardware breakpoint at a guest symbol's address, as a test writes it:
    /// `try vm.setBreakpoint(at: TestGuest.longBoot.symbol("handler"))`.
    /// A nil address — `FirmwareImage.symbol(_:)` found no such symbol — throws.
    public func setBreakpoint(at address: UInt64?) throws(VMTestError) {
        guard let address else {
            throw error(.invalidRequest("setBreakpoint(at:) got nil: the guest has no such symbol (FirmwareImage.symbol(_:) returned nil)"))
        }
        try setBreakpoint(at: address)
    }
}

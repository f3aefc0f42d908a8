import VMMTesting

extension TestVM {
    /// Runs the bootstrap processor until its next exit or for `slice`,
    /// whichever comes first. With more than one vCPU the guest may do what a
    /// test waits for (read the UART, print an answer) on another processor,
    /// whose exits its own thread handles, while the bootstrap processor
    /// sleeps in KVM: a slice without an exit of its own is no failure.
    func runBootstrapProcessor(upTo slice: Duration) throws(VMTestError) {
        do throws(VMTestError) {
            try nextExit(timeout: slice)
        } catch {
            guard case .timeout = error.kind else { throw error }
        }
    }
}

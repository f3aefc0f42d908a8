/// A virtual CPU the VMM can run until its next exit.
///
/// `KVMVCPU` implements it on real hardware; tests can implement it with a
/// scripted list of exits, so that exit dispatch is tested without `/dev/kvm`.
public protocol VirtualCPU: ~Copyable {
    /// Runs guest code until the next exit.
    mutating func run() throws -> VMExit
    /// Supplies the data for the pending `ioIn` or `mmioRead` exit.
    /// Must be called before the next ``run()`` for the read to see it.
    mutating func completeRead(_ data: IOData)
    func registers() throws -> Registers
    func setRegisters(_ registers: Registers) throws
    func specialRegisters() throws -> SpecialRegisters
    func setSpecialRegisters(_ registers: SpecialRegisters) throws
}

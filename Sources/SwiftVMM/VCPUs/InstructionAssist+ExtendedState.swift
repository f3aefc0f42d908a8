import GuestMemory
import KVM
import VMCore

extension InstructionAssist {
    /// Carries out `instruction` (the XSAVE family) through `KVM_GET_XSAVE2`
    /// and `KVM_SET_XSAVE` with the guest's memory image, raising what the
    /// CPU raises: #UD without CR4.OSXSAVE (and for XSAVES/XRSTORS where the
    /// guest's CPUID lacks them), #GP(0) for an operand not 64-byte aligned or a header or MXCSR
    /// XRSTOR refuses, #PF (CR2 set) where the operand's pages are not
    /// mapped or not writable. Returns `false` where it cannot (16-bit
    /// addressing, XSAVES on a guest that has it, an operand outside RAM):
    /// the exit then stays an internal error.
    static func performExtendedState(
        _ instruction: ExtendedStateInstruction, on vcpu: borrowing KVMVCPU, context: AssistContext
    ) throws(KVMError) -> Bool {
        if instruction.form == .loadMXCSR || instruction.form == .storeMXCSR {
            return try performControlStatus(instruction, on: vcpu, context: context)
        }
        guard let memory = context.memory else { return false }
        let layout = context.xsaveLayout
        var registers = try vcpu.registers()
        let special = try vcpu.specialRegisters()
        guard special.cr4 & osxsave != 0 else {
            try vcpu.injectException(vector: invalidOpcode)
            return true
        }
        switch instruction.form {
        case .supervisor:
            // XSAVES/XRSTORS: #UD where the guest's CPUID does not offer them;
            // supervisor state (IA32_XSS) is beyond KVM's XSAVE buffer, so not otherwise.
            guard !layout.hasXSAVES else { return false }
            try vcpu.injectException(vector: invalidOpcode)
            return true
        default:
            // XSAVEOPT and XSAVEC run natively on hardware virtualization
            // whatever the guest's CPUID says (KVM cannot intercept them), and
            // this host's guests see the host's CPUID leaf 0xD anyway: no #UD.
            break
        }
        let longMode = special.cs.l && special.efer & (1 << 10) != 0
        guard !instruction.hasREX || longMode,
            let address = instruction.operand.linearAddress(
                registers: registers, special: special, nextRIP: registers.rip &+ instruction.length)
        else { return false }
        guard address & 63 == 0 else {
            try vcpu.injectException(vector: generalProtection, errorCode: 0)
            return true
        }
        let xcr0 = try vcpu.xcrs().first { $0.index == 0 }?.value ?? 1
        let requested = ((registers.rdx & 0xffff_ffff) << 32 | registers.rax & 0xffff_ffff) & xcr0
        var state = try vcpu.xsave()
        let walk = PageWalk(special: special, rflags: registers.rflags)
        let access = GuestLinearAccess(memory: memory, walk: walk)

        switch instruction.form {
        case .save, .saveOptimized, .saveCompacted:
            let compacted = instruction.form == .saveCompacted
            guard let extent = XSAVEImage.saveExtent(requested: requested, compacted: compacted, layout: layout) else { return false }
            let pages: [UInt64]
            var area: [UInt8]
            do throws(GuestLinearAccess.Failure) {
                pages = try access.pages(address, count: extent, write: true)
                area = try access.read(pages, address, count: extent)
            } catch { return try raise(error, special: special, on: vcpu) }
            let written = XSAVEImage.save(
                state: state, into: &area, requested: requested, optimized: instruction.form == .saveOptimized,
                compacted: compacted, layout: layout, wide: instruction.wide, longMode: longMode)
            do throws(GuestLinearAccess.Failure) {
                for range in written { try access.write(area[range], pages, address, offset: range.lowerBound) }
            } catch { return try raise(error, special: special, on: vcpu) }
        case .restore:
            let header: [UInt8]
            do throws(GuestLinearAccess.Failure) {
                header = try access.read(
                    try access.pages(address, count: XSAVELayout.legacyAndHeaderSize, write: false), address,
                    count: XSAVELayout.legacyAndHeaderSize)
            } catch { return try raise(error, special: special, on: vcpu) }
            guard let extent = XSAVEImage.restoreExtent(legacyAndHeader: header, requested: requested, layout: layout) else {
                // A compacted header naming components the guest's CPUID does not have.
                try vcpu.injectException(vector: generalProtection, errorCode: 0)
                return true
            }
            let area: [UInt8]
            do throws(GuestLinearAccess.Failure) {
                area = try access.read(try access.pages(address, count: extent, write: false), address, count: extent)
            } catch { return try raise(error, special: special, on: vcpu) }
            do throws(XSAVEImage.Fault) {
                try XSAVEImage.restore(
                    area, into: &state, requested: requested, xcr0: xcr0, layout: layout, wide: instruction.wide, longMode: longMode)
            } catch {
                try vcpu.injectException(vector: generalProtection, errorCode: 0)
                return true
            }
            do { try vcpu.setXSAVE(state) } catch .failed(.setXSAVE, .invalidArgument) {
                // KVM refuses what the host CPU would (an MXCSR or XSTATE_BV it cannot load): #GP(0).
                try vcpu.injectException(vector: generalProtection, errorCode: 0)
                return true
            }
        case .supervisor, .loadMXCSR, .storeMXCSR:
            return false
        }
        registers.rip &+= instruction.length
        try vcpu.setRegisters(registers)
        return true
    }

    static let pageFaultVector: UInt8 = 14

    /// Raises what a failed access to the guest's linear memory means: #PF
    /// with CR2 set, as the CPU raises it, and `true` (the assist is done);
    /// `false` for an access outside RAM, which stays an internal error.
    static func raise(
        _ failure: GuestLinearAccess.Failure, special: SpecialRegisters, on vcpu: borrowing KVMVCPU
    ) throws(KVMError) -> Bool {
        guard case .pageFault(let linear, let errorCode) = failure else { return false }
        var special = special
        special.cr2 = linear
        try vcpu.setSpecialRegisters(special)
        try vcpu.injectException(vector: pageFaultVector, errorCode: errorCode)
        return true
    }
}

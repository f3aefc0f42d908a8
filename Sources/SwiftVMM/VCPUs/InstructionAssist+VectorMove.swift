import GuestMemory
import KVM
import VMCore

extension InstructionAssist {
    /// Carries out `move` through `KVM_GET_XSAVE2`/`KVM_SET_XSAVE` (and guest
    /// memory, through the page walk): #UD without CR4.OSXSAVE or with SSE or
    /// AVX off in XCR0, #GP(0) for a misaligned `vmovdqa`/`vmovntdq(a)`
    /// operand, #PF as for the XSAVE family. Returns `false` where it cannot.
    static func performVectorMove(_ move: VectorMove, on vcpu: borrowing KVMVCPU, context: AssistContext) throws(KVMError) -> Bool {
        guard let memory = context.memory, let avx = context.xsaveLayout.components[2] else { return false }
        var registers = try vcpu.registers()
        let special = try vcpu.specialRegisters()
        let xcr0 = try vcpu.xcrs().first { $0.index == 0 }?.value ?? 1
        guard special.cr4 & osxsave != 0, xcr0 & 6 == 6 else {
            try vcpu.injectException(vector: invalidOpcode)
            return true
        }
        let longMode = special.cs.l && special.efer & (1 << 10) != 0
        let count = longMode ? 16 : 8
        let zmmUpper = context.xsaveLayout.components[6]?.offset
        var state = try vcpu.xsave()
        let nextRIP = registers.rip &+ move.length
        let access = GuestLinearAccess(memory: memory, walk: PageWalk(special: special, rflags: registers.rflags))
        func fault(_ failure: GuestLinearAccess.Failure) throws(KVMError) -> Bool {
            try raise(failure, special: special, on: vcpu)
        }
        var address: UInt64 = 0
        if let operand = move.operand {
            guard let linear = operand.linearAddress(registers: registers, special: special, nextRIP: nextRIP) else { return false }
            guard !move.aligned || linear % UInt64(move.width) == 0 else {
                try vcpu.injectException(vector: generalProtection, errorCode: 0)
                return true
            }
            address = linear
        }
        switch move.kind {
        case .zeroAll, .zeroUpper:
            for n in 0..<count {
                let low =
                    move.kind == .zeroAll
                    ? [UInt8](repeating: 0, count: 16) : VectorMove.read(n, width: 16, from: state, upperOffset: avx.offset)
                VectorMove.write(n, low, into: &state, upperOffset: avx.offset, zmmUpperOffset: zmmUpper)
            }
        case .load(let register):
            let bytes: [UInt8]
            if let source = move.source {
                bytes = VectorMove.read(source, width: move.width, from: state, upperOffset: avx.offset)
            } else {
                do throws(GuestLinearAccess.Failure) {
                    bytes = try access.read(try access.pages(address, count: move.width, write: false), address, count: move.width)
                } catch { return try fault(error) }
            }
            VectorMove.write(register, bytes, into: &state, upperOffset: avx.offset, zmmUpperOffset: zmmUpper)
        case .store(let register):
            let bytes = VectorMove.read(register, width: move.width, from: state, upperOffset: avx.offset)
            if let destination = move.source {
                VectorMove.write(destination, bytes, into: &state, upperOffset: avx.offset, zmmUpperOffset: zmmUpper)
            } else {
                do throws(GuestLinearAccess.Failure) {
                    let pages = try access.pages(address, count: move.width, write: true)
                    try access.write(bytes[...], pages, address, offset: 0)
                } catch { return try fault(error) }
                registers.rip = nextRIP
                try vcpu.setRegisters(registers)
                return true
            }
        }
        try vcpu.setXSAVE(state)
        registers.rip = nextRIP
        try vcpu.setRegisters(registers)
        return true
    }
}

extension InstructionAssist {
    /// The assist for an emulation failure whose report holds too few bytes
    /// to decode (KVM reports only what its decoder fetched: two bytes of a
    /// VEX instruction, say): up to 15 bytes read at CS:RIP through the
    /// guest's page tables, as the CPU would fetch them.
    static func refetched(on vcpu: borrowing KVMVCPU, context: AssistContext, guestHasINVPCID: Bool) throws(KVMError) -> InstructionAssist?
    {
        guard let memory = context.memory else { return nil }
        let registers = try vcpu.registers()
        let special = try vcpu.specialRegisters()
        let longMode = special.cs.l && special.efer & (1 << 10) != 0
        let rip = longMode ? registers.rip : (special.cs.base &+ registers.rip) & 0xffff_ffff
        let access = GuestLinearAccess(memory: memory, walk: PageWalk(special: special, rflags: registers.rflags))
        // Up to the end of the page, then the next page if it is mapped too.
        let inPage = Int(GuestMemory.pageSize - rip % GuestMemory.pageSize)
        var bytes: [UInt8] = []
        for count in [15, min(15, inPage)] where bytes.isEmpty {
            bytes = (try? access.read(try access.pages(rip, count: count, write: false), rip, count: count)) ?? []
        }
        guard !bytes.isEmpty else { return nil }
        var words: [UInt64] = [1]
        let packed = [UInt8(bytes.count)] + bytes + [UInt8](repeating: 0, count: 16 - 1 - bytes.count)
        for chunk in stride(from: 0, to: 16, by: 8) {
            words.append(packed[chunk..<chunk + 8].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        }
        return InstructionAssist(emulationFailure: words, guestHasINVPCID: guestHasINVPCID)
    }
}

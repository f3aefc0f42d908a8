import GDBStub
import VMCore

/// The GDB register file from KVM's register structures, and back.
extension X86RegisterFile {
    private static let generalNames = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + (8...15).map { "r\($0)" }
    private static let segmentNames = ["cs", "ss", "ds", "es", "fs", "gs"]

    init(general r: Registers, special s: SpecialRegisters, fpu: FPUState?) {
        self.init()
        let values = [r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15]
        for (name, value) in zip(Self.generalNames, values) { self[name] = value }
        self["rip"] = r.rip
        self["eflags"] = r.rflags & 0xffff_ffff
        for (name, segment) in zip(Self.segmentNames, [s.cs, s.ss, s.ds, s.es, s.fs, s.gs]) { self[name] = UInt64(segment.selector) }
        self["fs_base"] = s.fs.base
        self["gs_base"] = s.gs.base
        self["cr0"] = s.cr0
        self["cr2"] = s.cr2
        self["cr3"] = s.cr3
        self["cr4"] = s.cr4
        self["efer"] = s.efer
        guard let fpu else {
            floatingPointAvailable = false
            return
        }
        let st0 = Self.st0
        for i in 0..<8 { self[st0 + i] = Array(fpu.fpr[i].prefix(10)) }
        self["fctrl"] = UInt64(fpu.fcw)
        self["fstat"] = UInt64(fpu.fsw)
        // GDB shows the full tag word; KVM keeps the abridged one (a bit per register: valid or empty).
        var tag: UInt64 = 0
        for i in 0..<8 where fpu.ftwx & (1 << UInt8(i)) == 0 { tag |= 0b11 << (UInt64(i) * 2) }
        self["ftag"] = tag
        self["fioff"] = fpu.lastIP & 0xffff_ffff
        self["fooff"] = fpu.lastDP & 0xffff_ffff
        self["fop"] = UInt64(fpu.lastOpcode)
        let xmm0 = Self.xmm0
        for i in 0..<16 { self[xmm0 + i] = fpu.xmm[i] }
        self["mxcsr"] = UInt64(fpu.mxcsr)
    }

    /// Writes these values into KVM's structures. A changed selector in real
    /// mode moves the segment's base with it (base = selector * 16).
    func apply(to r: inout Registers, _ s: inout SpecialRegisters, _ fpu: inout FPUState?) {
        let g = Self.generalNames.map { self[$0] }
        (r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp) = (g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7])
        (r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15) = (g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15])
        r.rip = self["rip"]
        r.rflags = r.rflags & ~0xffff_ffff | self["eflags"] & 0xffff_ffff
        let realMode = s.cr0 & 1 == 0
        func update(_ segment: inout Segment, _ name: String) {
            let selector = UInt16(truncatingIfNeeded: self[name])
            guard selector != segment.selector else { return }
            segment.selector = selector
            if realMode { segment.base = UInt64(selector) << 4 }
        }
        update(&s.cs, "cs")
        update(&s.ss, "ss")
        update(&s.ds, "ds")
        update(&s.es, "es")
        update(&s.fs, "fs")
        update(&s.gs, "gs")
        s.fs.base = self["fs_base"]
        s.gs.base = self["gs_base"]
        s.cr0 = self["cr0"]
        s.cr2 = self["cr2"]
        s.cr3 = self["cr3"]
        s.cr4 = self["cr4"]
        s.efer = self["efer"]
        guard floatingPointAvailable, var state = fpu else { return }
        let st0 = Self.st0
        for i in 0..<8 { state.fpr[i] = self[st0 + i] + Array(state.fpr[i].dropFirst(10)) }
        state.fcw = UInt16(truncatingIfNeeded: self["fctrl"])
        state.fsw = UInt16(truncatingIfNeeded: self["fstat"])
        let tag = self["ftag"]
        var abridged: UInt8 = 0
        for i in 0..<8 where (tag >> (UInt64(i) * 2)) & 0b11 != 0b11 { abridged |= 1 << UInt8(i) }
        state.ftwx = abridged
        state.lastIP = state.lastIP & ~0xffff_ffff | self["fioff"] & 0xffff_ffff
        state.lastDP = state.lastDP & ~0xffff_ffff | self["fooff"] & 0xffff_ffff
        state.lastOpcode = UInt16(truncatingIfNeeded: self["fop"])
        let xmm0 = Self.xmm0
        for i in 0..<16 { state.xmm[i] = self[xmm0 + i] }
        state.mxcsr = UInt32(truncatingIfNeeded: self["mxcsr"])
        fpu = state
    }
}

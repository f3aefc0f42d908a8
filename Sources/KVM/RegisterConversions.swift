internal import CKVM
import VMCore

// Conversions between swiftvmm's register values and KVM's structs. Kept in
// the KVM module so that no `kvm_*` type ever appears in public API.

extension Registers {
    init(_ r: kvm_regs) {
        self.init()
        rax = r.rax; rbx = r.rbx; rcx = r.rcx; rdx = r.rdx
        rsi = r.rsi; rdi = r.rdi; rsp = r.rsp; rbp = r.rbp
        r8 = r.r8; r9 = r.r9; r10 = r.r10; r11 = r.r11
        r12 = r.r12; r13 = r.r13; r14 = r.r14; r15 = r.r15
        rip = r.rip; rflags = r.rflags
    }
}

extension kvm_regs {
    init(_ r: Registers) {
        self.init(
            rax: r.rax, rbx: r.rbx, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, rsp: r.rsp, rbp: r.rbp,
            r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
            rip: r.rip, rflags: r.rflags)
    }
}

extension Segment {
    init(_ s: kvm_segment) {
        self.init(
            base: s.base, limit: s.limit, selector: s.selector, type: s.type, present: s.present != 0, dpl: s.dpl,
            db: s.db != 0, s: s.s != 0, l: s.l != 0, g: s.g != 0, avl: s.avl != 0, unusable: s.unusable != 0)
    }

    var kvm: kvm_segment {
        kvm_segment(
            base: base, limit: limit, selector: selector, type: type, present: present ? 1 : 0, dpl: dpl,
            db: db ? 1 : 0, s: s ? 1 : 0, l: l ? 1 : 0, g: g ? 1 : 0, avl: avl ? 1 : 0, unusable: unusable ? 1 : 0,
            padding: 0)
    }
}

extension SpecialRegisters {
    init(_ s: kvm_sregs) {
        self.init()
        cs = Segment(s.cs); ds = Segment(s.ds); es = Segment(s.es)
        fs = Segment(s.fs); gs = Segment(s.gs); ss = Segment(s.ss)
        tr = Segment(s.tr); ldt = Segment(s.ldt)
        gdt = DescriptorTable(base: s.gdt.base, limit: s.gdt.limit)
        idt = DescriptorTable(base: s.idt.base, limit: s.idt.limit)
        cr0 = s.cr0; cr2 = s.cr2; cr3 = s.cr3; cr4 = s.cr4; cr8 = s.cr8
        efer = s.efer; apicBase = s.apic_base
    }

    func store(into s: inout kvm_sregs) {
        s.cs = cs.kvm; s.ds = ds.kvm; s.es = es.kvm
        s.fs = fs.kvm; s.gs = gs.kvm; s.ss = ss.kvm
        s.tr = tr.kvm; s.ldt = ldt.kvm
        s.gdt.base = gdt.base; s.gdt.limit = gdt.limit
        s.idt.base = idt.base; s.idt.limit = idt.limit
        s.cr0 = cr0; s.cr2 = cr2; s.cr3 = cr3; s.cr4 = cr4; s.cr8 = cr8
        s.efer = efer; s.apic_base = apicBase
    }
}

extension FPUState {
    init(_ f: kvm_fpu) {
        self.init()
        fpr = withUnsafeBytes(of: f.fpr) { raw in (0..<8).map { Array(raw[($0 * 16)..<($0 * 16 + 16)]) } }
        xmm = withUnsafeBytes(of: f.xmm) { raw in (0..<16).map { Array(raw[($0 * 16)..<($0 * 16 + 16)]) } }
        fcw = f.fcw; fsw = f.fsw; ftwx = f.ftwx
        lastOpcode = f.last_opcode; lastIP = f.last_ip; lastDP = f.last_dp
        mxcsr = f.mxcsr
    }
}

extension kvm_fpu {
    init(_ state: FPUState) {
        self.init()
        withUnsafeMutableBytes(of: &fpr) { raw in
            for (i, register) in state.fpr.prefix(8).enumerated() {
                for (j, byte) in register.prefix(16).enumerated() { raw[i * 16 + j] = byte }
            }
        }
        withUnsafeMutableBytes(of: &xmm) { raw in
            for (i, register) in state.xmm.prefix(16).enumerated() {
                for (j, byte) in register.prefix(16).enumerated() { raw[i * 16 + j] = byte }
            }
        }
        fcw = state.fcw; fsw = state.fsw; ftwx = state.ftwx
        last_opcode = state.lastOpcode; last_ip = state.lastIP; last_dp = state.lastDP
        mxcsr = state.mxcsr
    }
}

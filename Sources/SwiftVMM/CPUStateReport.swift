import VMCore

/// Formats the vCPU state printed after a guest fails.
public enum CPUStateReport {
    static func pad(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    public static func format(registers: Registers?, special: SpecialRegisters?) -> String {
        var lines: [String] = []
        if let r = registers {
            lines.append("RIP=\(pad(r.rip)) RFLAGS=\(pad(r.rflags))")
            lines.append("RAX=\(pad(r.rax)) RBX=\(pad(r.rbx)) RCX=\(pad(r.rcx)) RDX=\(pad(r.rdx))")
            lines.append("RSI=\(pad(r.rsi)) RDI=\(pad(r.rdi)) RSP=\(pad(r.rsp)) RBP=\(pad(r.rbp))")
            lines.append("R8 =\(pad(r.r8)) R9 =\(pad(r.r9)) R10=\(pad(r.r10)) R11=\(pad(r.r11))")
            lines.append("R12=\(pad(r.r12)) R13=\(pad(r.r13)) R14=\(pad(r.r14)) R15=\(pad(r.r15))")
        } else {
            lines.append("general registers: unavailable")
        }
        if let s = special {
            lines.append("CR0=\(pad(s.cr0)) CR2=\(pad(s.cr2)) CR3=\(pad(s.cr3)) CR4=\(pad(s.cr4)) EFER=\(pad(s.efer))")
            for (name, segment) in [("CS", s.cs), ("DS", s.ds), ("ES", s.es), ("FS", s.fs), ("GS", s.gs), ("SS", s.ss), ("TR", s.tr)] {
                lines.append(
                    "\(name) =\(hex(segment.selector)) base=\(pad(segment.base)) limit=\(hex(segment.limit)) type=\(hex(segment.type)) dpl=\(segment.dpl) db=\(segment.db ? 1 : 0) l=\(segment.l ? 1 : 0)"
                )
            }
            lines.append("GDT=\(pad(s.gdt.base)) limit \(hex(s.gdt.limit))  IDT=\(pad(s.idt.base)) limit \(hex(s.idt.limit))")
        } else {
            lines.append("special registers: unavailable")
        }
        return lines.joined(separator: "\n")
    }
}

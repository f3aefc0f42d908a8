/* The built-in demo (`swiftvmm run` with no guest): a tour of the x86 modes,
 * from the real mode a PC boots in to a ring-3 program whose privileged
 * instruction the ring-0 code traps and emulates. Entered in real mode at
 * 0:0x7c00, like a boot sector. It builds every table it needs itself (GDT,
 * page tables, IDT, TSS) and relies on the VMM for nothing but COM1 and the
 * debug-exit port.
 *
 * Prints on COM1, one line per stage:
 *   swiftvmm demo: real mode, 16-bit, loaded at 0x7c00
 *   swiftvmm demo: protected mode, 32-bit, own GDT
 *   swiftvmm demo: long mode, 64-bit, own page tables at 0x10000
 *   swiftvmm demo: user mode, ring 3
 *   swiftvmm demo: trap: #GP from user mode, emulated mov %cr3, %rax
 *   swiftvmm demo: user mode: back from trap, rax = 0x00010000 (cr3)
 * and exits with status 0 from ring 3. Status 2 means an exception (or a
 * trapping ring-3 instruction) the demo did not expect, 4 that the emulated
 * value did not arrive.
 *
 * Memory it uses: 0x7c00 and up (the image), below 0x7c00 (the ring-0
 * stack), 0x10000-0x12fff (page tables), below 0x20000 (the ring-3 stack).
 * It runs a few thousand instructions, most of them in the page-table clear
 * and the serial loops. */
#include "guest.inc"

/* Page tables: one each of PML4, PDPT and page directory, 4 KiB apart. Well
 * clear of the image and of the VMM's own tables (which real-mode entry does
 * not write anyway). */
#define PML4            0x10000
#define PDPT            0x11000
#define PD              0x12000
/* Present, writable, and user: U/S must be set at every level for ring 3 to
 * touch a page. */
#define PAGE_FLAGS      0x7
#define PAGE_2M         0x80    /* PS in a page-directory entry */

#define KERNEL_STACK    0x7c00  /* also TSS.RSP0: the stack ring 3 traps onto */
#define USER_STACK      0x20000

/* Selectors into the GDT below. */
#define SEL_CODE32      0x08
#define SEL_DATA        0x10
#define SEL_CODE64      0x18
#define SEL_USER_CODE64 0x20
#define SEL_USER_DATA   0x28
#define SEL_TSS         0x30
#define RPL3            3

#define CR0_PE          0x00000001
#define CR0_PG          0x80000000
#define CR4_PAE         0x00000020
#define MSR_EFER        0xc0000080
#define EFER_LME        0x00000100
#define RFLAGS_FIXED    0x00000002  /* bit 1 always reads as 1 */
#define RFLAGS_IOPL3    0x00003000  /* ring 3 may use IN/OUT: how it reaches COM1 */

/* ---------------------------------------------------------------- real mode */
    .code16
    .globl _start
_start:
    /* A boot sector trusts nothing it was not told: set the segments and
     * stack it uses, and keep interrupts off since there is no IVT worth
     * the name. */
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $KERNEL_STACK, %sp
    PUTS16 msg_real

    /* lgdtl: the 32-bit form, so all of the base is loaded. */
    lgdtl gdt_descriptor
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    /* The far jump reloads CS from the new GDT: from here on, 32-bit code. */
    ljmpl $SEL_CODE32, $protected_entry

/* ----------------------------------------------------------- protected mode */
    .code32
protected_entry:
    mov $SEL_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov $KERNEL_STACK, %esp
    PUTS32 msg_protected

    /* Identity-map the first 4 MiB with two 2 MiB pages: the image, both
     * stacks and the tables themselves all lie in it. Clear the three tables
     * first: RAM is zero at boot, but a loader must not count on that. */
    mov $PML4, %edi
    xor %eax, %eax
    mov $(3 * 4096 / 4), %ecx
    rep stosl
    movl $(PDPT | PAGE_FLAGS), PML4
    movl $(PD | PAGE_FLAGS), PDPT
    movl $(0x000000 | PAGE_2M | PAGE_FLAGS), PD
    movl $(0x200000 | PAGE_2M | PAGE_FLAGS), PD + 8

    /* The order the SDM (vol. 3, 10.8.5) asks for: PAE, CR3, EFER.LME, and
     * paging last, which activates long mode (EFER.LMA) in compatibility mode. */
    mov %cr4, %eax
    or $CR4_PAE, %eax
    mov %eax, %cr4
    mov $PML4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $CR0_PG, %eax
    mov %eax, %cr0
    /* A code segment with L = 1 leaves compatibility mode for 64-bit mode. */
    ljmp $SEL_CODE64, $long_entry

/* ---------------------------------------------------------------- long mode */
    .code64
long_entry:
    PUTS64 msg_long

    /* An IDT for the exceptions 0-13, so that ring 3's #GP has somewhere to
     * go, and a TSS whose RSP0 is the stack the CPU switches to when ring 3
     * traps into ring 0. */
    lidt idt_descriptor(%rip)
    mov $SEL_TSS, %ax
    ltr %ax

    /* Enter ring 3 by returning to it: iretq pops RIP, CS, RFLAGS, RSP, SS.
     * IOPL 3 in RFLAGS lets ring 3 print and exit with OUT (where the host
     * honours it; see gp_handler for where it does not); IF stays clear. */
    pushq $(SEL_USER_DATA | RPL3)
    pushq $USER_STACK
    pushq $(RFLAGS_IOPL3 | RFLAGS_FIXED)
    pushq $(SEL_USER_CODE64 | RPL3)
    pushq $user_entry
    iretq

/* ---------------------------------------------------------------- user mode */
user_entry:
    PUTS64 msg_user
    /* Reading CR3 is privileged whatever IOPL is: #GP, which the ring-0
     * handler emulates by putting CR3 in RAX and stepping over the
     * instruction. Clear RAX first so that a handler that did nothing shows. */
    xor %eax, %eax
    mov %cr3, %rax
    mov %rax, %rbx
    PUTS64 msg_back
    mov %rbx, %rax
    PUTHEX64 8
    PUTS64 msg_back_end
    cmp $PML4, %rbx
    jne user_wrong_value
    /* Ring 3 ends the VM itself, through IOPL 3 or gp_handler. */
    EXIT 0
user_wrong_value:
    EXIT 4

/* ---------------------------------------------------------- ring-0 handlers */

/* #GP: the CPU switched to RSP0 and pushed SS, RSP, RFLAGS, CS, RIP and an
 * error code. Two kinds of ring-3 instruction are emulated, recognised by
 * their bytes at the saved RIP; anything else is unexpected.
 *
 *   mov %cr3, %rax (0f 20 d8): privileged whatever IOPL says. Put CR3 in RAX,
 *   say so on COM1, and resume after the 3-byte instruction.
 *
 *   out %al, %dx (ee) and out %eax, %dx (ef) to COM1 or the debug-exit port:
 *   with IOPL 3 these never trap on hardware KVM, but KVM's PVM back end
 *   runs guest ring 3 with IOPL 0 whatever the iretq frame said, so each one
 *   traps here. Doing the OUT on ring 3's behalf keeps the output the same
 *   on both, silently, as a VMM emulates a port. */
gp_handler:
    push %rsi
    push %rdx
    /* Now: RDX, RSI, error code, RIP at 24, CS at 32. RAX and RDX still hold
     * ring 3's values, which the OUT emulation needs. */
    testb $3, 32(%rsp)
    jz unexpected               /* from ring 0: a bug in the demo */
    mov 24(%rsp), %rsi
    cmpb $0xee, (%rsi)
    je emulate_out
    cmpb $0xef, (%rsi)
    je emulate_out
    cmpw $0x200f, (%rsi)        /* 0f 20: mov from a control register */
    jne unexpected
    cmpb $0xd8, 2(%rsi)         /* ModRM d8: CR3 into RAX */
    jne unexpected
    PUTS64 msg_trap
    mov %cr3, %rax              /* the emulation: the result ring 3 asked for */
    addq $3, 24(%rsp)           /* resume after the 3-byte instruction */
    jmp gp_return

emulate_out:
    /* Only the two ports ring 3 has any business with. */
    cmp $COM1, %dx
    je 1f
    cmp $DEBUG_EXIT, %dx
    jne unexpected
1:  cmpb $0xee, (%rsi)
    jne 2f
    out %al, %dx
    jmp 3f
2:  out %eax, %dx               /* the debug-exit write: the VM stops here */
3:  addq $1, 24(%rsp)           /* both forms are one byte long */

gp_return:
    pop %rdx
    pop %rsi
    add $8, %rsp                /* the error code; iretq does not pop it */
    iretq

/* Every other exception: say so and stop with a status the test rejects. */
unexpected:
    PUTS64 msg_unexpected
    EXIT 2
    cli
    hlt

/* ----------------------------------------------------------- serial output */
    .code16
DEFINE_PUTS16
    .code32
DEFINE_PUTS32
    .code64
DEFINE_PUTS64
DEFINE_PUTHEX64

/* ------------------------------------------------------------------- tables */
    .p2align 4
gdt:
    .quad 0                     /* null */
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code, ring 0, 4 GiB */
    .quad 0x00cf92000000ffff    /* 0x10: data, ring 0, 4 GiB */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code (L = 1), ring 0 */
    .quad 0x00affa000000ffff    /* 0x20: 64-bit code, ring 3 */
    .quad 0x00cff2000000ffff    /* 0x28: data, ring 3 */
    /* 0x30: a 64-bit TSS descriptor takes two slots. The image lies below
     * 64 KiB, so base bits 16-63 are zero (the linker checks the .word). */
    .word tss_end - tss - 1     /* limit 15:0 */
    .word tss                   /* base 15:0 */
    .byte 0                     /* base 23:16 */
    .byte 0x89                  /* present, DPL 0, type 9: available 64-bit TSS */
    .byte 0                     /* limit 19:16, flags */
    .byte 0                     /* base 31:24 */
    .long 0                     /* base 63:32 */
    .long 0                     /* reserved */
gdt_end:

/* One gate per vector, pointing at \handler in the 64-bit ring-0 segment. */
.macro GATE handler
    .word \handler              /* offset 15:0 (the image lies below 64 KiB) */
    .word SEL_CODE64
    .byte 0                     /* IST 0: use RSP0 on a change to ring 0 */
    .byte 0x8e                  /* present, DPL 0, 64-bit interrupt gate */
    .word 0                     /* offset 31:16 */
    .long 0                     /* offset 63:32 */
    .long 0                     /* reserved */
.endm

    .p2align 4
idt:
    .rept 13                    /* 0-12: #DE ... #SS */
    GATE unexpected
    .endr
    GATE gp_handler             /* 13: #GP */
idt_end:

/* The 64-bit TSS (SDM vol. 3, 9.7): only RSP0 matters here. */
    .p2align 4
tss:
    .long 0                     /* reserved */
    .quad KERNEL_STACK          /* RSP0 */
    .quad 0, 0                  /* RSP1, RSP2 */
    .quad 0                     /* reserved */
    .quad 0, 0, 0, 0, 0, 0, 0   /* IST1-IST7 */
    .quad 0                     /* reserved */
    .word 0                     /* reserved */
    .word tss_end - tss         /* I/O map base past the limit: no bitmap, IOPL decides */
tss_end:

gdt_descriptor:                 /* lgdtl: 16-bit limit, 32-bit base */
    .word gdt_end - gdt - 1
    .long gdt
idt_descriptor:                 /* lidt in 64-bit mode: 16-bit limit, 64-bit base */
    .word idt_end - idt - 1
    .quad idt

/* ------------------------------------------------------------------ strings */
msg_real:       .asciz "swiftvmm demo: real mode, 16-bit, loaded at 0x7c00\n"
msg_protected:  .asciz "swiftvmm demo: protected mode, 32-bit, own GDT\n"
msg_long:       .asciz "swiftvmm demo: long mode, 64-bit, own page tables at 0x10000\n"
msg_user:       .asciz "swiftvmm demo: user mode, ring 3\n"
msg_trap:       .asciz "swiftvmm demo: trap: #GP from user mode, emulated mov %cr3, %rax\n"
msg_back:       .asciz "swiftvmm demo: user mode: back from trap, rax = 0x"
msg_back_end:   .asciz " (cr3)\n"
msg_unexpected: .asciz "swiftvmm demo: unexpected exception in the demo\n"

/* Ring 3 for the 64-bit C guests in firmware/longmode/, for hosts that
 * emulate ring 0 (KVM's PVM back end, ~1 us an instruction; 32-bit
 * compatibility-mode ring 3 is emulated too) but run 64-bit ring 3 natively.
 *
 * `ring3_run(work, kernel_stack_top, user_stack_top)` loads its own GDT (the
 * VMM's CS 0x18 stays valid: that slot is 64-bit ring-0 code here too), a
 * TSS and an IDT, and `iretq`s to `work` at CPL 3 with IF clear. The VMM's
 * identity page tables are user-accessible at every level, so ring 3 reaches
 * RAM and the MMIO windows as they are; `rdtsc` needs no help. Port I/O from
 * ring 3 faults (#GP: PVM ignores IOPL there), and the ring-0 handler does
 * `in`/`out` for it (the one-byte forms, byte or dword, port in DX or an
 * immediate) and steps over, so `puts` and `exit_with` work unchanged, at
 * one trap per byte. If `work` returns, the guest ends with status 0.
 *
 * Any other exception prints `ring3: exception V W W W` (V the vector; then
 * the low 32 bits of the frame's first three words: error code if any, RIP,
 * CS) and ends the guest with 0x7e. */
#ifndef SWIFTVMM_GUEST_RING3_H
#define SWIFTVMM_GUEST_RING3_H

#include "guest_c.h"

u64 ring3_gdt[8] __attribute__((aligned(16)));
u32 ring3_tss[26] __attribute__((aligned(16)));
u64 ring3_idt[64] __attribute__((aligned(16)));

/* In the assembly below. */
extern const u8 ring3_exception_stubs[];
void ring3_gp(void);
__attribute__((noreturn)) void ring3_enter(u64 kernel_stack_top, u64 user_stack_top, void (*work)(void));

static inline void ring3_gate(u32 vector, uptr handler) {
    ring3_idt[vector * 2] = (handler & 0xffff) | (0x18ull << 16) | (0x8e00ull << 32) | ((u64)((handler >> 16) & 0xffff) << 48);
    ring3_idt[vector * 2 + 1] = (u64)handler >> 32;
}

/* Selectors: 0x10 ring-0 data, 0x18 ring-0 64-bit code, 0x23 ring-3 data,
 * 0x2b ring-3 64-bit code, 0x30 the TSS. Stacks: 16-byte aligned tops. */
static inline __attribute__((noreturn)) void ring3_run(void (*work)(void), u64 kernel_stack_top, u64 user_stack_top) {
    ring3_gdt[2] = 0x00cf92000000ffffull; /* data, DPL 0 */
    ring3_gdt[3] = 0x00af9a000000ffffull; /* 64-bit code, DPL 0 */
    ring3_gdt[4] = 0x00cff2000000ffffull; /* data, DPL 3 */
    ring3_gdt[5] = 0x00affa000000ffffull; /* 64-bit code, DPL 3 */
    uptr base = (uptr)ring3_tss;
    u32 limit = sizeof ring3_tss - 1;
    ring3_gdt[6] = (limit & 0xffff) | ((u64)(base & 0xffffff) << 16) | (0x89ull << 40) | ((u64)((base >> 24) & 0xff) << 56);
    ring3_gdt[7] = (u64)base >> 32;
    ring3_tss[1] = (u32)kernel_stack_top; /* RSP0 */
    ring3_tss[2] = (u32)(kernel_stack_top >> 32);
    ring3_tss[25] = (u32)sizeof ring3_tss << 16; /* no I/O bitmap */
    for (u32 v = 0; v < 32; v++) ring3_gate(v, (uptr)ring3_exception_stubs + v * 16);
    ring3_gate(13, (uptr)ring3_gp);
    outb(0x21, 0xff); /* both PICs masked: ring 3 runs with IF clear anyway */
    outb(0xa1, 0xff);
    ring3_enter(kernel_stack_top, user_stack_top, work);
}

__asm__(".pushsection .text\n"
        ".globl ring3_enter\n"
        "ring3_enter:\n" /* RDI kernel stack, RSI user stack, RDX work */
        "    cli\n"
        "    lgdt ring3_gdt_pointer(%rip)\n"
        "    mov $0x10, %eax\n"
        "    mov %ax, %ds\n"
        "    mov %ax, %es\n"
        "    mov %ax, %ss\n"
        "    mov %rdi, %rsp\n"
        "    lidt ring3_idt_pointer(%rip)\n"
        "    mov $0x30, %eax\n"
        "    ltr %ax\n"
        /* work's return address: the end below. */
        "    sub $8, %rsi\n"
        "    lea ring3_returned(%rip), %rax\n"
        "    mov %rax, (%rsi)\n"
        /* iretq pops RIP, CS, RFLAGS (IOPL 0, IF clear), RSP, SS. */
        "    pushq $0x23\n"
        "    push %rsi\n"
        "    pushq $0x0002\n"
        "    pushq $0x2b\n"
        "    push %rdx\n"
        "    iretq\n"
        "ring3_returned:\n"
        "    xor %eax, %eax\n"
        "    out %eax, $0xf4\n"
        "1:  jmp 1b\n"
        /* One 16-byte stub per exception vector. */
        ".balign 16\n"
        ".globl ring3_exception_stubs\n"
        "ring3_exception_stubs:\n"
        "    .rept 32\n"
        "    .balign 16\n"
        "    call ring3_exception\n"
        "    .endr\n"
        /* The vector from the stub's return address: (address - stubs - 5) / 16. */
        "ring3_exception:\n"
        "    pop %rbx\n"
        "    lea ring3_exception_stubs + 5(%rip), %rax\n"
        "    sub %rax, %rbx\n"
        "    shr $4, %ebx\n"
        "ring3_exception_print:\n"
        "    lea ring3_exception_text(%rip), %rsi\n"
        "    mov $0x3f8, %dx\n"
        "1:  lodsb\n"
        "    test %al, %al\n"
        "    jz 2f\n"
        "    out %al, %dx\n"
        "    jmp 1b\n"
        "2:  mov %ebx, %eax\n"
        "    shr $4, %eax\n"
        "    call ring3_hex_digit\n"
        "    mov %ebx, %eax\n"
        "    call ring3_hex_digit\n"
        /* Then the low halves of the frame's first three words: (error code,) RIP, CS. */
        "    mov $3, %ecx\n"
        "5:  mov $' ', %al\n"
        "    out %al, %dx\n"
        "    pop %rbx\n"
        "    mov $28, %edi\n"
        "6:  mov %ebx, %eax\n"
        "    xchg %edi, %ecx\n"
        "    shr %cl, %eax\n"
        "    xchg %edi, %ecx\n"
        "    call ring3_hex_digit\n"
        "    sub $4, %edi\n"
        "    jns 6b\n"
        "    loop 5b\n"
        "    mov $10, %al\n"
        "    out %al, %dx\n"
        "    mov $0x7e, %eax\n"
        "    out %eax, $0xf4\n"
        "3:  hlt\n"
        "    jmp 3b\n"
        "ring3_hex_digit:\n"
        "    and $15, %eax\n"
        "    add $'0', %al\n"
        "    cmp $'9', %al\n"
        "    jbe 4f\n"
        "    add $('a' - '0' - 10), %al\n"
        "4:  out %al, %dx\n"
        "    ret\n"
        /* #GP: port I/O from ring 3 done here for it, then on past the
         * instruction. The frame: error code, RIP, CS, RFLAGS, RSP, SS. */
        ".globl ring3_gp\n"
        "ring3_gp:\n"
        "    push %rsi\n"
        "    push %rcx\n"
        "    mov 24(%rsp), %rsi\n" /* RIP */
        "    testb $3, 32(%rsp)\n" /* only from ring 3 */
        "    jz 7f\n"
        "    movzbl (%rsi), %ecx\n"
        "    cmp $0xee, %cl\n"
        "    je 11f\n"
        "    cmp $0xef, %cl\n"
        "    je 12f\n"
        "    cmp $0xe6, %cl\n"
        "    je 13f\n"
        "    cmp $0xe7, %cl\n"
        "    je 14f\n"
        "    cmp $0xec, %cl\n"
        "    je 15f\n"
        "    cmp $0xed, %cl\n"
        "    je 16f\n"
        "    cmp $0xe4, %cl\n"
        "    je 18f\n"
        "    cmp $0xe5, %cl\n"
        "    je 19f\n"
        "7:  pop %rcx\n"
        "    pop %rsi\n"
        "    mov $13, %ebx\n"
        "    jmp ring3_exception_print\n"
        "11: out %al, %dx\n"
        "    mov $1, %ecx\n"
        "    jmp 17f\n"
        "12: out %eax, %dx\n"
        "    mov $1, %ecx\n"
        "    jmp 17f\n"
        "13: push %rdx\n"
        "    movzbl 1(%rsi), %edx\n"
        "    out %al, %dx\n"
        "    pop %rdx\n"
        "    mov $2, %ecx\n"
        "    jmp 17f\n"
        "14: push %rdx\n"
        "    movzbl 1(%rsi), %edx\n"
        "    out %eax, %dx\n"
        "    pop %rdx\n"
        "    mov $2, %ecx\n"
        "    jmp 17f\n"
        "15: in %dx, %al\n"
        "    mov $1, %ecx\n"
        "    jmp 17f\n"
        "16: in %dx, %eax\n"
        "    mov $1, %ecx\n"
        "    jmp 17f\n"
        "18: push %rdx\n"
        "    movzbl 1(%rsi), %edx\n"
        "    in %dx, %al\n"
        "    pop %rdx\n"
        "    mov $2, %ecx\n"
        "    jmp 17f\n"
        "19: push %rdx\n"
        "    movzbl 1(%rsi), %edx\n"
        "    in %dx, %eax\n"
        "    pop %rdx\n"
        "    mov $2, %ecx\n"
        "17: add %rcx, 24(%rsp)\n"
        "    pop %rcx\n"
        "    pop %rsi\n"
        "    add $8, %rsp\n"
        "    iretq\n"
        ".popsection\n"
        ".pushsection .rodata\n"
        "ring3_exception_text: .asciz \"ring3: exception \"\n"
        ".balign 8\n"
        "ring3_gdt_pointer: .word 8 * 8 - 1\n"
        "    .quad ring3_gdt\n"
        "ring3_idt_pointer: .word 32 * 16 - 1\n"
        "    .quad ring3_idt\n"
        ".popsection\n");

#endif

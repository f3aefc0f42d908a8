/* Executes `int3` with its own IDT whose #BP handler (vector 3) checks that
 * the saved RIP points just past the int3 and exits with status 0x33; status
 * 0x44 if the saved RIP is wrong. On hardware KVM delivers the #BP itself; on
 * hosts whose KVM cannot (PVM), the PC platform delivers it. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    /* Gate for vector 3 at idt + 3*16: 64-bit interrupt gate, selector 0x18. */
    lea bp_handler(%rip), %rax
    lea idt(%rip), %rdi
    mov %ax, 48(%rdi)                 /* offset 15:0 */
    movw $0x18, 50(%rdi)              /* code selector (the VMM's 64-bit code) */
    movw $0x8e00, 52(%rdi)            /* present, DPL 0, type 0xe */
    shr $16, %rax
    mov %ax, 54(%rdi)                 /* offset 31:16 */
    shr $16, %rax
    mov %eax, 56(%rdi)                /* offset 63:32 */
    lea idtr(%rip), %rsi
    mov %rdi, 2(%rsi)                 /* IDTR base = idt */
    lidt (%rsi)
    int3
after_int3:
    EXIT 0x55                         /* came back without the handler */
    hlt
bp_handler:
    lea after_int3(%rip), %rax
    cmp %rax, (%rsp)                  /* saved RIP */
    jne 1f
    EXIT 0x33
    hlt
1:  EXIT 0x44
    hlt
    .balign 16
idt: .fill 64, 1, 0
idtr:
    .word 63
    .quad 0                           /* base, set at run time */

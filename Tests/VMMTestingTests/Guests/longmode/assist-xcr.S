/* InstructionAssist: xgetbv and xsetbv (not emulated by the PVM host) read
 * and write XCR0 through KVM. Sets CR4.OSXSAVE, checks that XCR0 has x87,
 * writes x87|SSE and reads it back, then x87|SSE|AVX. An invalid XCR0 (x87
 * clear) must raise #GP, whose handler ends the VM with 0x0d after checking
 * XCR0 kept its value. Exit 0x0d when every check holds, otherwise the
 * number of the failed check; the test reads XCR0 itself at the end. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    lidt idt_pointer(%rip)
    /* #GP (vector 13) goes to gp_handler: a 64-bit interrupt gate, CS 0x18. */
    lea gp_handler(%rip), %rax
    lea idt(%rip), %rdi
    mov %ax, 13*16(%rdi)
    movw $0x18, 13*16+2(%rdi)
    movw $0x8e00, 13*16+4(%rdi)
    shr $16, %rax
    mov %ax, 13*16+6(%rdi)
    shr $16, %rax
    mov %eax, 13*16+8(%rdi)

    mov %cr4, %rax
    or $(1 << 18), %rax
    mov %rax, %cr4
    /* 1: XCR0 has x87 (bit 0); EDX is the upper half, 0. */
    mov $-1, %rdx
    xor %ecx, %ecx
    xgetbv
    test $1, %eax
    jz fail1
    test %rdx, %rdx
    jnz fail1
    /* 2: x87|SSE reads back. */
    mov $3, %eax
    xor %edx, %edx
    xor %ecx, %ecx
    xsetbv
    xor %eax, %eax
    xgetbv
    cmp $3, %rax
    jne fail2
    /* 3: x87|SSE|AVX reads back. */
    mov $7, %eax
    xor %edx, %edx
    xsetbv
    xor %eax, %eax
    xgetbv
    cmp $7, %rax
    jne fail3
    /* 4: x87 clear is invalid: #GP, handled below. */
    xor %eax, %eax
    xor %edx, %edx
    xsetbv
    EXIT 4

gp_handler:
    /* The error code is 0 and XCR0 is still x87|SSE|AVX. */
    pop %rbx
    test %rbx, %rbx
    jnz fail5
    xor %ecx, %ecx
    xgetbv
    cmp $7, %rax
    jne fail5
    EXIT 0x0d
fail1: EXIT 1
fail2: EXIT 2
fail3: EXIT 3
fail5: EXIT 5

    .balign 16
idt:
    .fill 64, 8, 0
idt_end:
idt_pointer:
    .word idt_end - idt - 1
    .quad idt
    .balign 16
    .fill 512, 1, 0
stack_top:

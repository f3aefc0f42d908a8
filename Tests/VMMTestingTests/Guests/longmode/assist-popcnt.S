/* InstructionAssist: popcnt with register operands (not emulated by the PVM
 * host), in every operand size and with REX-extended registers. Exit 0 when
 * every result and flag is right, otherwise the number of the failed check. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    /* 1: 64 bits. */
    mov $0xf0f0f0f0f0f0f0f0, %rdi
    mov $-1, %rax
    popcnt %rdi, %rax
    cmp $32, %rax
    jne fail1
    /* 2: 32 bits clears the upper half of the destination. */
    mov $-1, %rax
    mov $0xffffffff80000001, %rdi
    popcnt %edi, %eax
    cmp $2, %rax
    jne fail2
    /* 3: R8-R15 on both sides (REX.R and REX.B). */
    mov $0x1234567800000000, %r9
    mov $-1, %r10
    popcnt %r9, %r10
    cmp $13, %r10
    jne fail3
    /* 4: 16 bits keeps the rest of the destination. */
    mov $0x123456789abcdef0, %rbx
    mov $0xffffffffffff00ff, %rcx
    popcnt %cx, %bx
    mov $0x123456789abc0008, %rdx
    cmp %rdx, %rbx
    jne fail4
    /* 5: a non-zero source clears CF, OF, SF, AF, PF and ZF. */
    push $0x8d7
    popfq
    mov $1, %esi
    popcnt %rsi, %rdx
    pushfq
    pop %rax
    cmp $0x2, %rax
    jne fail5
    cmp $1, %rdx
    jne fail5
    /* 6: a zero source sets ZF only. */
    xor %esi, %esi
    stc
    popcnt %rsi, %rdx
    pushfq
    pop %rax
    cmp $0x42, %rax
    jne fail6
    test %rdx, %rdx
    jnz fail6
    EXIT 0
fail1: EXIT 1
fail2: EXIT 2
fail3: EXIT 3
fail4: EXIT 4
fail5: EXIT 5
fail6: EXIT 6

/* A hostile guest: `xsave` with its destination in MMIO (0xd0000000, no RAM
 * and no device). The CPU cannot complete it, so KVM must emulate it, and
 * KVM's instruction emulator has no XSAVE: KVM gives up with an internal
 * error (emulation failure, suberror 1), leaving RIP at the instruction.
 *
 * An IDT catching vectors 0-31 makes sure the stop is not a triple fault:
 * any exception exits with status 0x7e. Without XSAVE in CPUID (leaf 1,
 * ECX bit 26) it exits with 0x71; if the xsave completes, 0x72. */
#include "guest.inc"

#define HOLE    0xd0000000

    .code64
    .globl _start
_start:
    /* 32 identical interrupt gates to `exception`, selector 0x18. */
    lea exception(%rip), %rax
    lea idt(%rip), %rdi
    xor %ecx, %ecx
1:  mov %ax, (%rdi)
    movw $0x18, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    mov %rax, %rdx
    shr $16, %rdx
    mov %dx, 6(%rdi)
    shr $16, %rdx
    mov %edx, 8(%rdi)
    add $16, %rdi
    inc %ecx
    cmp $32, %ecx
    jne 1b
    lea idt(%rip), %rdi
    lea idtr(%rip), %rsi
    mov %rdi, 2(%rsi)
    lidt (%rsi)

    mov $1, %eax
    cpuid
    bt $26, %ecx
    jc 2f
    EXIT 0x71
    hlt
2:  mov %cr4, %rax
    bts $18, %rax                     /* CR4.OSXSAVE; XCR0 is 1 (x87) from reset */
    mov %rax, %cr4
    mov $HOLE, %edi
    mov $1, %eax
    xor %edx, %edx
    .globl xsave_to_mmio
xsave_to_mmio:
    xsave (%rdi)
    EXIT 0x72
    hlt

exception:
    EXIT 0x7e
    hlt

    .balign 16
idt: .fill 512, 1, 0
idtr:
    .word 511
    .quad 0

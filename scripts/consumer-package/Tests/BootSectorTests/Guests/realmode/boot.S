/* The README's boot sector: prints a greeting on COM1, syncs at stage 1,
 * checks the test's answer (0x2a) and exits 0. Its macros come from
 * swiftvmm's firmware/include, not from this package. */
#include "guest.inc"
#include "hypercall.inc"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    PUTS16 greeting
    GUEST_SYNC(1)
    mov %eax, %ecx
greeted:
    HC_ASSERT_EQ(%ecx, 0x2a, "the test's answer")
    EXIT 0
    hlt
    DEFINE_PUTS16
greeting: .asciz "Hello from real mode!\n"
    .org 510
    .byte 0x55, 0xaa

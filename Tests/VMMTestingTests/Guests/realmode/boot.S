/* A classic 512-byte boot sector, as the README's first VMMTesting example
 * tests it: entered at 0:0x7c00, prints a greeting on COM1 and exits 0. */
#include "guest.inc"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    PUTS16 greeting
    EXIT 0
    hlt
    DEFINE_PUTS16
greeting: .asciz "Hello from real mode!\n"
    .org 510
    .byte 0x55, 0xaa

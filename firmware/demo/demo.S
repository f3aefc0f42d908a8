/* Hello in real mode: entered at 0:0x7c00 with SS:SP just below it.
 * Prints "Hello from real mode!\n" on COM1, then exits with status 0. */
#include "guest.inc"
    .code16
    .globl _start
_start:
    mov $msg, %si
    mov $COM1, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  EXIT 0
    cli
    hlt
msg: .asciz "Hello from real mode!\n"

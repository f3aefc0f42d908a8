/* Hello in 64-bit long mode: entered at 0x100000 with the VMM's identity map
 * (CS 0x18), RSP just below the image. Prints "Hello from long mode!\n" on
 * COM1, then exits with status 0. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    PUTS64 msg
    EXIT 0
    /* Not reached: the debug-exit write stops the VM. */
    cli
    hlt

DEFINE_PUTS64

msg: .asciz "Hello from long mode!\n"

/* Hello in 32-bit protected mode: entered at 0x100000 with the VMM's flat
 * 4 GiB segments (CS 0x08, data 0x10), paging off, ESP just below the image.
 * Prints "Hello from protected mode!\n" on COM1, then exits with status 0. */
#include "guest.inc"
    .code32
    .globl _start
_start:
    PUTS32 msg
    EXIT 0
    /* Not reached: the debug-exit write stops the VM. */
    cli
    hlt

DEFINE_PUTS32

msg: .asciz "Hello from protected mode!\n"

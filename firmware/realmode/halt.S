/* Halting with interrupts off: entered in real mode at 0:0x7c00. Prints
 * "halting\n", then cli; hlt. Nothing can wake the CPU, so the VMM stops with
 * .halted(interruptsEnabled: false), which counts as a clean stop (status 0). */
#include "guest.inc"
    .code16
    .globl _start
_start:
    cld
    PUTS16 msg
    cli
    hlt
    /* Not reached: an interrupt could end the hlt, but nothing raises one. */
    EXIT 0x55

DEFINE_PUTS16

msg: .asciz "halting\n"

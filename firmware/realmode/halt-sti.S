/* Halting with interrupts on: entered in real mode at 0:0x7c00. Prints
 * "halting with interrupts enabled\n", then sti; hlt. On a PC the CPU would
 * wait for the next timer tick; this machine has no interrupt source, so the
 * VMM stops with .halted(interruptsEnabled: true), a failure (status 1)
 * because the guest was waiting for something that can never come. */
#include "guest.inc"
    .code16
    .globl _start
_start:
    cld
    PUTS16 msg
    /* sti takes effect after the next instruction, so no interrupt can slip
     * in between the two: the classic way to wait for one. */
    sti
    hlt
    /* Not reached: nothing raises an interrupt. */
    EXIT 0x55

DEFINE_PUTS16

msg: .asciz "halting with interrupts enabled\n"

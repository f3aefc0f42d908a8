/* A triple fault on purpose: entered in long mode at 0x100000. Prints
 * "triple fault next\n", loads an IDT with limit 0 so that no vector has a
 * gate, and executes ud2. Delivering #UD (6) finds no gate and becomes #GP,
 * which finds none either and becomes #DF, whose failure is a triple fault:
 * a shutdown exit on hardware KVM, a KVM internal error (suberror 1) on hosts
 * that emulate ring 0. It never writes to the debug-exit port. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    PUTS64 msg
    lidt empty_idt(%rip)
    ud2
    /* Not reached. If it were, the status says the fault was lost. */
    EXIT 0x55
    cli
    hlt

DEFINE_PUTS64

msg: .asciz "triple fault next\n"
    /* limit 0: only byte 0 of the table is inside it, so every gate is out of bounds */
empty_idt:
    .word 0
    .quad 0

/* A hostile guest: prints "spinning with interrupts off\n", then loops
 * forever at `spin` with interrupts disabled. Nothing inside the VM can
 * end it; only the VMM's deadline does (`StopReason.deadlineExpired`). */
#include "guest.inc"
    .code16
    .globl _start
_start:
    PUTS16 msg
    cli
spin:
    jmp spin

DEFINE_PUTS16

msg: .asciz "spinning with interrupts off\n"

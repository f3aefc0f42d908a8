/* Serial input by polling, the way a boot loader reads a console: entered in
 * real mode at 0:0x7c00.
 *
 * While LSR.DR (bit 0 of 0x3fd) says a byte is waiting, reads it from RBR
 * (0x3f8) and echoes it to THR, with a-z turned into A-Z. After echoing a
 * '\n' it exits with status 0. The first time LSR says nothing is waiting it
 * prints "no input\n" and exits with status 3: the VMM queues all input before
 * the guest runs, so an empty FIFO means the input ran out, and waiting for
 * more would spin forever. */
#include "guest.inc"

#define LSR_DR  0x01

    .code16
    .globl _start
_start:
    cld
next:
    mov $COM1_LSR, %dx
    in %dx, %al
    test $LSR_DR, %al
    jz no_input
    mov $COM1, %dx
    in %dx, %al
    cmp $'a', %al
    jb echo
    cmp $'z', %al
    ja echo
    sub $('a' - 'A'), %al
echo:
    out %al, %dx
    cmp $'\n', %al
    jne next
    EXIT 0

no_input:
    PUTS16 msg_no_input
    EXIT 3
    cli
    hlt

DEFINE_PUTS16

msg_no_input: .asciz "no input\n"

/* A polled 16550 driver under test: sends "OK\n" to COM1, waiting before each
 * byte for LSR.THRE (bit 5, transmit holding register empty) for at most 16
 * polls. Exits with status 0 if every byte went out, 2 if the transmitter
 * never became ready (the driver's timeout path). */
#include "guest.inc"
    .code16
    .globl _start
_start:
    mov $msg, %si
next:
    lodsb
    test %al, %al
    jz done
    mov %al, %bl
    mov $16, %cx
poll:
    mov $COM1_LSR, %dx
    in %dx, %al
    test $0x20, %al
    jnz send
    loop poll
    EXIT 2
    hlt
send:
    mov $COM1, %dx
    mov %bl, %al
    out %al, %dx
    jmp next
done:
    EXIT 0
    hlt
msg: .asciz "OK\n"

/* Syncs at stages 1, 2 and 3 with rbx = 10, 20, 30, logging between, then
 * checks that the test's answer to stage 3 (in eax) is 0x33, with a message:
 * a wrong answer fails with this file, line and message. Exits 0. */
#include "guest.inc"
#include "hypercall.inc"
    .code64
    .globl _start
_start:
    mov $10, %ebx
    GUEST_SYNC(1)
    mov $20, %ebx
    HC_LOG text, 5
    GUEST_SYNC(2)
    mov $30, %ebx
    GUEST_SYNC(3)
    mov %eax, %ecx
    HC_ASSERT_EQ(%ecx, 0x33, "the answer to stage 3")
    EXIT 0
    hlt
text: .ascii "stage"

/* InstructionAssist: clac and stac (not emulated by the PVM host) change
 * RFLAGS.AC and nothing else. Exit 0 when every check holds; 1: clac left
 * RFLAGS 0x40003 as anything but 0x3, 2: stac turned 0x3 into anything but
 * 0x40003, 3: a register changed. R15 keeps the last RFLAGS seen. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    mov $0x1111, %ebx
    mov $0x2222, %esi
    /* AC and CF set, the rest clear: clac leaves CF only. */
    push $0x40003
    popfq
    clac
    pushfq
    pop %r15
    cmp $0x3, %r15
    jne fail1
    /* CF set, AC clear: stac sets AC only. */
    push $0x3
    popfq
    stac
    pushfq
    pop %r15
    cmp $0x40003, %r15
    jne fail2
    clac
    cmp $0x1111, %ebx
    jne fail3
    cmp $0x2222, %esi
    jne fail3
    EXIT 0
fail1: EXIT 1
fail2: EXIT 2
fail3: EXIT 3

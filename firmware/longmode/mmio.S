/* MMIO where there is neither RAM nor a device: entered in long mode at
 * 0x100000. The VMM's identity map covers all of the first 4 GiB, so
 * 0xd0000000 and 0xe0000000 (above any test RAM, below the local APIC at
 * 0xfee00000) are mapped but have no memory slot, and every access exits to
 * the VMM as MMIO, which reads all ones and drops writes.
 *
 * Reads 32 bits at 0xd0000000, writes 0x12345678 there, reads 32 bits at
 * 0xe0000000, and prints "mmio: 0xd0000000 reads ffffffff, 0xe0000000 reads
 * ffffffff\n" (with the values read). Exits with status 0x11 if both reads
 * were 0xffffffff, else 0x22: a status that is neither 0 nor 1, so that a
 * test cannot mistake another guest's success or a crash for this result.
 * Leaves the first value in EBX and the second in EBP. */
#include "guest.inc"

#define HOLE1   0xd0000000
#define HOLE2   0xe0000000

    .code64
    .globl _start
_start:
    mov $HOLE1, %edi            /* zero-extends: a 32-bit immediate would sign-extend */
    mov (%rdi), %ebx
    movl $0x12345678, (%rdi)
    mov $HOLE2, %edi
    mov (%rdi), %ebp

    PUTS64 msg_first
    mov %ebx, %eax
    PUTHEX64 8
    PUTS64 msg_second
    mov %ebp, %eax
    PUTHEX64 8
    PUTS64 msg_newline

    cmp $0xffffffff, %ebx
    jne 1f
    cmp $0xffffffff, %ebp
    jne 1f
    EXIT 0x11
1:  EXIT 0x22
    cli
    hlt

DEFINE_PUTS64
DEFINE_PUTHEX64

msg_first:   .asciz "mmio: 0xd0000000 reads "
msg_second:  .asciz ", 0xe0000000 reads "
msg_newline: .asciz "\n"

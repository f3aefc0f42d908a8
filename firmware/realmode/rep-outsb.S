/* String I/O: entered in real mode at 0:0x7c00. Prints two lines with
 * rep outsb (count > 1), so that the VMM sees I/O exits that carry several
 * bytes at once rather than one OUT per byte:
 *   "rep outsb: one exit, many bytes\n"
 *   "rep outsb: second string\n"
 * then exits with status 0. The strings are the last bytes of the image, so
 * afterwards CX = 0 and SI = 0x7c00 + the image size. */
#include "guest.inc"
    .code16
    .globl _start
_start:
    cld                         /* outsb walks upwards through the string */
    mov $COM1, %dx
    mov $first, %si
    mov $(first_end - first), %cx
    rep outsb
    /* SI now points at the second string, which follows the first. */
    mov $(second_end - second), %cx
    rep outsb
    /* EXIT uses only eax and dx, so CX and SI survive for the host to check. */
    EXIT 0
    cli
    hlt

    /* No NUL terminators: the counts say where each string ends. */
first:      .ascii "rep outsb: one exit, many bytes\n"
first_end:
second:     .ascii "rep outsb: second string\n"
second_end:

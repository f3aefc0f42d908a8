/* Checks that 6 * 7 == 43, which fails: the test sees the assertion hypercall
 * with this check's line, expected 43 and actual 42. */
#include "hypercall.inc"
    .code64
    .globl _start
_start:
    mov $6, %ecx
    imul $7, %ecx
    HC_EXPECT_EQ(%ecx, 43)
    HC_DONE 0
    hlt

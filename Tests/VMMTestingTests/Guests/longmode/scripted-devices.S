/* Computes from what scripted devices answer, and hands the results back:
 *   port 0x700 (IN, 32-bit) -> v;  OUT v + 1 to port 0x701
 *   MMIO 0xd0000000 (32-bit read) -> m;  writes m * 3 to MMIO 0xd0000004
 * then exits through the debug-exit port with status (v + m) & 0xff. */
#include "guest.inc"
    .code64
    .globl _start
_start:
    mov $0x700, %dx
    in %dx, %eax
    mov %eax, %ebx
    inc %eax
    mov $0x701, %dx
    out %eax, %dx
    mov $0xd0000000, %esi
    mov (%rsi), %ecx
    lea (%ecx, %ecx, 2), %eax
    mov %eax, 4(%rsi)
    lea (%ebx, %ecx), %eax
    mov $DEBUG_EXIT, %dx
    out %eax, %dx
    cli
    hlt

/* Benchmark guest: ECX (set by the host) OUTs to the POST-code port 0x80, then
 * exits through the debug-exit port with status 0. Each OUT is one VM exit, so
 * the run measures the cost of a port-I/O exit through the VMM. */
#include "guest.inc"
    .code16
    .globl _start
_start:
1:  out %al, $POST_CODE
    dec %ecx
    jnz 1b
    EXIT 0
    cli
    hlt

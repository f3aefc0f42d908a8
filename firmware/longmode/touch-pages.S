/* Benchmark guest for the VM lifecycle (snapshot, restore, clone, reset):
 * it dirties a number of pages the host chooses, then stops at a POST code
 * right before its exit, so that a snapshot taken there resumes into one
 * exit: the debug-exit write.
 *
 * On entry the host sets RDI (first page, 4 KiB aligned, in the first 4 GiB)
 * and RCX (pages; 0 touches none). The guest writes POST code 1, stores each
 * page's own address in its first 8 bytes for RCX consecutive pages from RDI
 * (so every touched page is dirty and non-zero), writes POST code 2 and
 * exits with debugExit(0). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    mov $1, %al
    out %al, $POST_CODE
    test %rcx, %rcx
    jz 2f
1:  mov %rdi, (%rdi)
    add $4096, %rdi
    dec %rcx
    jnz 1b
2:  mov $2, %al
    out %al, $POST_CODE
    EXIT 0
    cli
    hlt

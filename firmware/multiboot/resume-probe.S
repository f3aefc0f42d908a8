/* The QEMU side of the restore benchmark: a Multiboot kernel that shows the
 * moment it resumes from a migration file. It sets QEMU's pc-testdev data
 * register (port 0xe0) to 1, stores each page's address in the first bytes
 * of 2560 pages from 0x200000 (10 MiB, as the swiftvmm benchmark guest
 * does), prints `resume-probe: waiting` on COM1 and polls port 0xe0 while it
 * reads 1. pc-testdev's register is not part of QEMU's migration stream, so
 * in a QEMU started with `-incoming` it reads 0 and the guest's first action
 * after the resume is its exit: debugExit(0x10), status 0x21 from QEMU's
 * isa-debug-exit. Where nothing answers at 0xe0 (swiftvmm: all ones) it
 * prints the line and exits at once. */
#include "guest.inc"

#define TESTDEV_DATA 0xe0
#define PAGES        2560

    .section .multiboot, "a"
    .balign 4
    .long 0x1BADB002                /* magic */
    .long 0                         /* flags: nothing asked of the loader */
    .long -0x1BADB002               /* checksum */

    .section .text.start, "ax"
    .code32
    .globl _start
_start:
    cli
    mov $stack_top, %esp
    mov $TESTDEV_DATA, %dx
    mov $1, %eax
    out %eax, %dx
    mov $0x200000, %edi
    mov $PAGES, %ecx
1:  mov %edi, (%edi)
    add $4096, %edi
    dec %ecx
    jnz 1b
    PUTS32 waiting
    mov $TESTDEV_DATA, %dx
2:  in %dx, %eax
    cmp $1, %eax
    je 2b
    EXIT 0x10
    cli
    hlt

DEFINE_PUTS32

waiting: .asciz "resume-probe: waiting\n"

    .bss
    .balign 16
    .skip 1024
stack_top:

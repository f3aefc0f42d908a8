/* One instruction of each kind that exits to the VMM, each labelled, with an
 * `inc %r8` after each so that a test can see that a single step over it ran
 * that instruction and not the next: OUT to port 0x80, IN from port 0x700,
 * an MMIO read of 0xd0000000 and a write of 0xd0000004, a hypercall (0x100,
 * argument 7) and HLT. The test scripts port 0x700 and the MMIO page. */
#include "hypercall.inc"
    .code64
    .globl _start
_start:
    xor %r8d, %r8d
    mov $0x2a, %al
port_out:
    out %al, $0x80
after_port_out:
    inc %r8
    mov $0x700, %dx
port_in:
    in %dx, %eax
after_port_in:
    inc %r8
    mov $0xd0000000, %ebx
mmio_read:
    mov (%rbx), %ecx
after_mmio_read:
    inc %r8
mmio_write:
    mov %ecx, 4(%rbx)
after_mmio_write:
    inc %r8
    mov $7, %edi
    mov $HYPERCALL_USER, %eax
    mov $HYPERCALL_PORT, %dx
hypercall:
    out %eax, %dx
after_hypercall:
    inc %r8
halt:
    hlt
after_halt:
    inc %r8
    hlt

/* The guest the GDB tests debug (GDBCLITests assembles it at test time into
 * a flat binary for swiftvmm and an ELF with symbols for gdb). Entered in
 * real mode at 0:0x7c00; goes through protected mode to long mode, writes
 * `watched`, spins while `spin` is non-zero, and ends through the
 * debug-exit port with the low byte of `watched` as its status. */
#include "guest.inc"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7000, %sp
real_mode_point:
    mov $0x1234, %bx
    lgdtl gdt_descriptor
    mov %cr0, %eax
    or $1, %eax
set_pe:
    mov %eax, %cr0
to_protected:
    ljmpl $0x08, $protected_entry

    .code32
protected_entry:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* Identity-map the first 2 MiB: PML4 at 0x10000, PDPT at 0x11000, PD at 0x12000. */
    mov $0x10000, %edi
    xor %eax, %eax
    mov $(3 * 4096 / 4), %ecx
    rep stosl
    movl $(0x11000 | 3), 0x10000
    movl $(0x12000 | 3), 0x11000
    movl $(0x0 | 0x83), 0x12000
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $0x10000, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000000, %eax
    mov %eax, %cr0
    ljmp $0x18, $long_entry

    .code64
long_entry:
    mov $0x5a, %eax
    movl %eax, watched(%rip)
after_write:
    nop
    cmpb $0, spin(%rip)
    je done
spin_loop:
    pause
    cmpb $0, spin(%rip)
    jne spin_loop
done:
    movl watched(%rip), %eax
    mov $DEBUG_EXIT, %dx
    out %eax, %dx
    hlt

    .p2align 4
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff    /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
    .quad 0x00af9a000000ffff    /* 0x18: 64-bit code */
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt

    .p2align 3
    .globl watched
watched: .long 0
    .globl spin
spin: .byte 0

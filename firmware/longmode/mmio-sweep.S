/* A hostile guest: reads 32 bits from, then writes them back to, guest-
 * physical addresses where there is neither RAM nor a device, across the
 * whole physical address space:
 *
 *   1. every 2 MiB from RDI (the end of RAM; the test sets it, 2 MiB
 *      aligned) up to 4 GiB, through the VMM's identity map;
 *   2. every power of two 2^32, 2^33, ... below 2^MAXPHYADDR (CPUID
 *      0x80000008 EAX[7:0]), through a 2 MiB window at virtual 512 GiB that
 *      it maps itself: PML4[1] (in the VMM's PML4 at CR3) -> a PDPT at
 *      0x300000 -> a page directory at 0x301000 whose entry 0 it points at
 *      each address in turn (invlpg after each change).
 *
 * Every 2 MiB all the way to the limit would be 2^(MAXPHYADDR-21) accesses
 * (33 million at 46 bits): far too many exits for a test. This covers every
 * 2 MiB the 32-bit world can reach and every bit of the address above it.
 *
 * Leaves R13 = accesses made (each one read and one write), R12 = reads
 * that did not return all ones, R14 = MAXPHYADDR; prints "mmio sweep
 * done\n" and exits with status 0x60. */
#include "guest.inc"

#define PML4        0x1000            /* the VMM's, at CR3 */
#define PDPT        0x300000
#define PD          0x301000
#define WINDOW      0x8000000000      /* 512 GiB: PML4 entry 1 */
#define TWO_MIB     0x200000

    .code64
    .globl _start
_start:
    xor %r12d, %r12d
    xor %r13d, %r13d
    mov %rdi, %rbx                    /* the address */
    mov $1, %rsi
    shl $32, %rsi                     /* 4 GiB */
1:  cmp %rsi, %rbx
    jae 2f
    call touch_rbx
    add $TWO_MIB, %rbx
    jmp 1b

2:  mov $0x80000008, %eax
    cpuid
    movzbl %al, %r14d                 /* MAXPHYADDR */
    movq $PDPT + 3, PML4 + 8          /* present, writable */
    movq $PD + 3, PDPT
    mov $32, %ecx
3:  cmp %r14d, %ecx
    jae 4f
    mov $1, %rax
    shl %cl, %rax
    or $0x83, %rax                    /* present, writable, 2 MiB page */
    mov %rax, PD
    mov $WINDOW, %rbx
    invlpg (%rbx)
    push %rcx
    call touch_rbx
    pop %rcx
    inc %ecx
    jmp 3b

4:  PUTS64 msg_done
    EXIT 0x60
    cli
    hlt

/* Read 32 bits at (%rbx), count them in R12 unless all ones, write them back. */
touch_rbx:
    mov (%rbx), %eax
    cmp $0xffffffff, %eax
    je 5f
    inc %r12
5:  mov %eax, (%rbx)
    inc %r13
    ret

DEFINE_PUTS64

msg_done: .asciz "mmio sweep done\n"

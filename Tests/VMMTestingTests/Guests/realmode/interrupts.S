/* Takes the interrupts a test raises. Points vector 0x35 (IRQ 5 once the
 * PIC's base is 0x30) and vector 2 (NMI) at handlers, programs the PC's
 * master PIC for base 0x30 with only IRQ 5 unmasked (on the minimal
 * platform nothing answers those ports), enables interrupts, syncs at
 * stage 1 and spins. The interrupt handler syncs at stage 2, the NMI
 * handler at stage 3, each with the vector in esi, and exits 0x35 or 2. */
#include "guest.inc"
#include "hypercall.inc"
    .code16
    .globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %ss
    mov $0x7c00, %sp
    movw $irq_handler, 0x35 * 4
    movw $0, 0x35 * 4 + 2
    movw $nmi_handler, 2 * 4
    movw $0, 2 * 4 + 2
    /* ICW1: edge, cascade, ICW4 follows; ICW2: base 0x30; ICW3: slave on
     * IRQ 2; ICW4: 8086 mode. Then OCW1: mask everything but IRQ 5. */
    mov $0x11, %al
    out %al, $0x20
    mov $0x30, %al
    out %al, $0x21
    mov $0x04, %al
    out %al, $0x21
    mov $0x01, %al
    out %al, $0x21
    mov $0xdf, %al
    out %al, $0x21
    sti
    GUEST_SYNC(1)
spin:
    jmp spin

irq_handler:
    mov $0x35, %esi
    GUEST_SYNC(2)
    EXIT 0x35
    hlt

nmi_handler:
    mov $2, %esi
    GUEST_SYNC(3)
    EXIT 2
    hlt

/* The PIT's timer interrupt through the IOAPIC pin the tables name.
 *
 * The MADT and the MP table both say ISA IRQ 0 arrives on IOAPIC pin 2 (the
 * interrupt source override every PC has). This guest believes them: it masks
 * both PICs, enables its local APIC, routes IOAPIC pin 2 to vector 0x30,
 * starts PIT channel 0 as a one-shot (mode 0) and halts with interrupts on.
 *
 * Ends with debugExit(0x30) from the vector-0x30 handler, or debugExit(2) if
 * any other vector arrives. Were the timer wired elsewhere, no interrupt
 * would come and the run would end at its deadline, halted.
 * Needs the PC platform (in-kernel PIC, IOAPIC, LAPIC and PIT). */
#include "guest.inc"

#define IOAPIC_SELECT   0xfec00000
#define IOAPIC_WINDOW   0xfec00010
#define LAPIC_SVR       0xfee000f0
#define LAPIC_EOI       0xfee000b0
#define TIMER_VECTOR    0x30

    .code32
    .globl _start
_start:
    /* Every vector but the timer's goes to `unexpected`. */
    IDT32 TIMER_VECTOR, timer, unexpected

    mov $0xff, %al                  /* mask every PIC line */
    out %al, $0x21
    out %al, $0xa1
    movl $0x1ff, LAPIC_SVR          /* APIC software-enabled, spurious vector 0xff */

    movl $0x14, IOAPIC_SELECT       /* redirection entry 2, high half: APIC id 0 */
    movl $0, IOAPIC_WINDOW
    movl $0x15, IOAPIC_SELECT
    movl $0, IOAPIC_WINDOW
    movl $0x14, IOAPIC_SELECT       /* low half: fixed, edge, unmasked, vector 0x30 */
    movl $TIMER_VECTOR, IOAPIC_WINDOW

    mov $0x30, %al                  /* PIT channel 0, low then high byte, mode 0 */
    out %al, $0x43
    mov $0x00, %al                  /* 0x1000 ticks of 1.193 MHz: about 3.4 ms */
    out %al, $0x40
    mov $0x10, %al
    out %al, $0x40

    sti
3:  hlt
    jmp 3b

timer:
    movl $0, LAPIC_EOI
    EXIT TIMER_VECTOR

unexpected:
    EXIT 2

    .balign 8
idt_pointer:
    .word (TIMER_VECTOR + 1) * 8 - 1
    .long idt
    .balign 8
idt:
    .fill (TIMER_VECTOR + 1) * 8, 1, 0

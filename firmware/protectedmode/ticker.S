/* A guest driven by timer interrupts, for the lifecycle tests: the same
 * output whenever it is paused, saved and restored, however its ticks fall.
 *
 * It routes ISA IRQ 0 (IOAPIC pin 2, as the MADT says) to vector 0x30,
 * starts PIT channel 0 as a rate generator (mode 2, about 1.2 kHz) and
 * halts with interrupts on. Each tick's handler adds the tick number times
 * 0x9e3779b9 to a running sum, stores the sum in a table at 0x200000 (one
 * slot per tick, a page apart, so each tick dirties a page of its own),
 * and prints `tick NN sum XXXXXXXX` on COM1. After 40 ticks it exits with
 * debugExit(0x30); any other vector exits 2.
 * Needs the PC platform (in-kernel PIC, IOAPIC, LAPIC and PIT).
 * slow-ticker.S includes this file with TICKS and PIT_DIVISOR_HIGH of its own. */
#include "guest.inc"

#define IOAPIC_SELECT   0xfec00000
#define IOAPIC_WINDOW   0xfec00010
#define LAPIC_SVR       0xfee000f0
#define LAPIC_EOI       0xfee000b0
#define TIMER_VECTOR    0x30
#ifndef TICKS
#define TICKS           40
#endif
#ifndef PIT_DIVISOR_HIGH
#define PIT_DIVISOR_HIGH 0x04               /* 0x400 ticks of 1.193 MHz: about 0.86 ms */
#endif
#define TABLE           0x200000

    .code32
    .globl _start
_start:
    IDT32 TIMER_VECTOR, timer, unexpected

    mov $0xff, %al                  /* mask every PIC line */
    out %al, $0x21
    out %al, $0xa1
    movl $0x1ff, LAPIC_SVR

    movl $0x15, IOAPIC_SELECT       /* redirection entry 2: APIC id 0 */
    movl $0, IOAPIC_WINDOW
    movl $0x14, IOAPIC_SELECT       /* fixed, edge, unmasked, vector 0x30 */
    movl $TIMER_VECTOR, IOAPIC_WINDOW

    mov $0x34, %al                  /* PIT channel 0, low then high byte, mode 2 */
    out %al, $0x43
    mov $0x00, %al                  /* the divisor's low byte */
    out %al, $0x40
    mov $PIT_DIVISOR_HIGH, %al
    out %al, $0x40

    mov %esp, initial_esp
idle:
    sti
3:  hlt
    jmp 3b

timer:
    incl count
    mov count, %eax
    imul $0x9e3779b9, %eax, %edx
    add %edx, sum
    mov sum, %edx
    mov %eax, %ebx
    shl $12, %ebx
    mov %edx, TABLE(%ebx)

    mov $tick_text, %esi
    call puts
    mov count, %eax
    mov $2, %ecx
    call puthex
    mov $sum_text, %esi
    call puts
    mov sum, %eax
    mov $8, %ecx
    call puthex
    mov $'\n', %al
    mov $COM1, %dx
    out %al, %dx

    movl $0, LAPIC_EOI
    cmpl $TICKS, count
    jne 4f
    EXIT TIMER_VECTOR
    /* This host's KVM (the PVM back end) cannot emulate `iret` in 32-bit
     * ring 0, and the idle loop has nothing to return to: drop the frame. */
4:  mov initial_esp, %esp
    jmp idle

/* puthex: the low ECX hex digits of EAX on COM1. */
puthex:
    mov %eax, %ebx
    mov %ecx, %edi
    shl $2, %ecx
    ror %cl, %ebx
5:  rol $4, %ebx
    mov %ebx, %eax
    and $0xf, %eax
    movb hexdigits(%eax), %al
    mov $COM1, %dx
    out %al, %dx
    dec %edi
    jnz 5b
    ret

/* puts: the NUL-terminated string at ESI on COM1. */
puts:
    mov $COM1, %dx
6:  lodsb
    test %al, %al
    jz 7f
    out %al, %dx
    jmp 6b
7:  ret

unexpected:
    EXIT 2

tick_text: .asciz "tick "
sum_text:  .asciz " sum "
hexdigits: .ascii "0123456789abcdef"
    .balign 4
count: .long 0
sum:   .long 0
initial_esp: .long 0
    .balign 8
idt_pointer:
    .word (TIMER_VECTOR + 1) * 8 - 1
    .long idt
    .balign 8
idt:
    .fill (TIMER_VECTOR + 1) * 8, 1, 0

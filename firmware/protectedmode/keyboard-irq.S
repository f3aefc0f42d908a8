/* Keys from the i8042 through IRQ 1, as a keyboard driver takes them.
 *
 * Writes the i8042 command byte 0x05 (keyboard interrupt on, system flag,
 * keyboard interface enabled, no translation: scan code set 2, as
 * Firecracker's guests see it), routes IOAPIC pin 1 (ISA IRQ 1, no override)
 * to vector 0x31 with both PICs masked, prints "kbd ready\n" and halts with
 * interrupts on. Each keyboard interrupt reads one byte from port 0x60 and
 * prints "key XX\n" (two hex digits). After four bytes (Ctrl-Alt-Del is four
 * bytes in set 2) it prints "kbd reset\n" and pulses the reset line (command
 * 0xfe at port 0x64), as Linux does on Ctrl-Alt-Del with reboot=k.
 *
 * A handler never returns (iret in 32-bit ring 0 is not emulated on this
 * project's hosts): it drops its frame and goes back to the halt loop.
 * debugExit(2) on any other vector. Needs the PC platform. */
#include "guest.inc"

#define IOAPIC_SELECT   0xfec00000
#define IOAPIC_WINDOW   0xfec00010
#define LAPIC_SVR       0xfee000f0
#define LAPIC_EOI       0xfee000b0
#define KEY_VECTOR      0x31
#define KBC_DATA        0x60
#define KBC_COMMAND     0x64

    .code32
    .globl _start
_start:
    IDT32 KEY_VECTOR, key, unexpected

    mov $0xff, %al                  /* mask every PIC line */
    out %al, $0x21
    out %al, $0xa1
    movl $0x1ff, LAPIC_SVR          /* APIC software-enabled, spurious vector 0xff */

    movl $0x13, IOAPIC_SELECT       /* redirection entry 1, high half: APIC id 0 */
    movl $0, IOAPIC_WINDOW
    movl $0x12, IOAPIC_SELECT       /* low half: fixed, edge, unmasked, vector 0x31 */
    movl $KEY_VECTOR, IOAPIC_WINDOW

    mov $0x60, %al                  /* write the command byte ... */
    out %al, $KBC_COMMAND
    mov $0x05, %al                  /* ... keyboard interrupt, system flag */
    out %al, $KBC_DATA

    PUTS32 ready
wait:
    mov $stack_top, %esp
    sti
3:  hlt
    jmp 3b

key:
    in $KBC_DATA, %al
    mov %al, %bl
    PUTS32 key_prefix
    mov %bl, %al
    shr $4, %al
    call puthex_digit
    mov %bl, %al
    call puthex_digit
    mov $'\n', %al
    out %al, %dx
    movl $0, LAPIC_EOI
    incl keys
    cmpl $4, keys
    jne wait
    PUTS32 resetting
    mov $0xfe, %al                  /* pulse the reset line */
    out %al, $KBC_COMMAND
    EXIT 3                          /* not reached when the reset is honoured */

unexpected:
    EXIT 2

/* Print the low nibble of al as a lower-case hex digit to COM1 (dx = COM1 after). */
puthex_digit:
    and $0x0f, %al
    add $'0', %al
    cmp $'9', %al
    jbe 4f
    add $('a' - '0' - 10), %al
4:  mov $COM1, %dx
    out %al, %dx
    ret

DEFINE_PUTS32

ready: .asciz "kbd ready\n"
key_prefix: .asciz "key "
resetting: .asciz "kbd reset\n"

    .balign 4
keys: .long 0
    .balign 8
idt_pointer:
    .word (KEY_VECTOR + 1) * 8 - 1
    .long idt
    .balign 8
idt:
    .fill (KEY_VECTOR + 1) * 8, 1, 0
    .balign 16
    .fill 256, 1, 0
stack_top:

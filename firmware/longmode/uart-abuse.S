/* A hostile guest for COM1: nonsense line settings, then a flood.
 *
 *   1. divisor 0 (DLAB on, DLL = DLM = 0), then LCR = 0x7f: DLAB off, break,
 *      stick parity, even parity, parity on, two stop bits, 8 data bits;
 *      FCR = 0xff (FIFOs on and reset, 14-byte trigger, DMA mode);
 *      IER = 0xff; MCR = 0xef (loopback off, every output and the reserved
 *      bits set).
 *   2. 4096 single `out`s to THR: bytes 0, 1, ..., 255, 0, 1, ...
 *   3. `rep outsb` of the same 4096-byte pattern from memory (0x200000).
 *   4. loopback on (MCR = 0x10), 80 bytes 'A' to THR (the VMM's 64-byte
 *      receive buffer overruns), LSR read twice: EBX = the first (DR and OE set), EBP
 *      = the second (DR only: OE is reported once); loopback off.
 *   5. prints "uart abuse done\n" and exits with status 0x44.
 *
 * The UART transmits whatever the line settings (there is no line), so the
 * output is the 8192 pattern bytes followed by the message. */
#include "guest.inc"

#define BUFFER  0x200000

    .code64
    .globl _start
_start:
    mov $COM1 + 3, %dx
    mov $0x80, %al
    out %al, %dx                      /* DLAB */
    mov $COM1, %dx
    xor %al, %al
    out %al, %dx                      /* DLL = 0 */
    inc %dx
    out %al, %dx                      /* DLM = 0 */
    mov $COM1 + 3, %dx
    mov $0x7f, %al
    out %al, %dx                      /* LCR */
    mov $COM1 + 2, %dx
    mov $0xff, %al
    out %al, %dx                      /* FCR */
    mov $COM1 + 1, %dx
    out %al, %dx                      /* IER */
    mov $COM1 + 4, %dx
    mov $0xef, %al
    out %al, %dx                      /* MCR */

    mov $COM1, %dx
    xor %ecx, %ecx
1:  mov %cl, %al
    out %al, %dx
    mov %cl, BUFFER(%rcx)
    inc %ecx
    cmp $4096, %ecx
    jne 1b

    mov $BUFFER, %esi
    mov $4096, %ecx
    cld
    rep outsb

    mov $COM1 + 4, %dx
    mov $0x10, %al
    out %al, %dx                      /* loopback */
    mov $COM1, %dx
    mov $'A', %al
    mov $80, %ecx
2:  out %al, %dx
    loop 2b
    mov $COM1 + 5, %dx
    in %dx, %al
    movzbl %al, %ebx
    in %dx, %al
    movzbl %al, %ebp
    mov $COM1 + 4, %dx
    mov $0x03, %al
    out %al, %dx                      /* loopback off */

    PUTS64 msg_done
    EXIT 0x44
    cli
    hlt

DEFINE_PUTS64

msg_done: .asciz "uart abuse done\n"

/* A hostile guest: reads and then writes every I/O port from 0 to 0xffff,
 * one byte each (`in %dx, %al` then `out %al, %dx`: it writes back what it
 * read, so the devices that exist see a value they produced themselves).
 *
 * Skipped, because a write there ends the VM before the sweep is done:
 * 0xf4-0xf7, the debug-exit port. On the minimal platform the tests use,
 * nothing else ends a VM on a write: there is no i8042 (0x64), no ACPI
 * sleep or reset register (0x600-0x602) and no reset control at 0xcf9.
 *
 * Stores the byte read from port p at 0x200000 + p (64 KiB; the skipped
 * ports' bytes stay 0), then prints "port sweep done\n" and exits with
 * status 0x50. Leaves the number of ports it read in EBX (65532). */
#include "guest.inc"

#define TABLE   0x200000

    .code64
    .globl _start
_start:
    xor %ecx, %ecx                    /* the port */
    xor %ebx, %ebx                    /* ports read */
1:  cmp $DEBUG_EXIT, %ecx
    jb 2f
    cmp $DEBUG_EXIT + 3, %ecx
    jbe 3f
2:  mov %ecx, %edx
    in %dx, %al
    mov %al, TABLE(%rcx)
    out %al, %dx
    inc %ebx
3:  inc %ecx
    cmp $0x10000, %ecx
    jne 1b

    PUTS64 msg_done
    EXIT 0x50
    cli
    hlt

DEFINE_PUTS64

msg_done: .asciz "port sweep done\n"

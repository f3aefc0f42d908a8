/* A serial flood: entered in 64-bit long mode at 0x100000 (ring 0, the VMM's
 * identity map). Writes flood_bytes bytes to the port flood_port (COM1's THR
 * unless patched) with `rep outsb`, at most 4 KiB a time from the 4 KiB block
 * below, then exits with status 0x46.
 *
 * The host sets the parameters by patching the image at the symbols
 * flood_bytes (u64, default 64 KiB) and flood_port (u16). The block is 63
 * lines of 64 bytes ("flood " then 'a'-'z' cycling, '\n') and one of 64 '.'
 * ending in '\n': so a block ends where the VMM's line buffer flushes, and
 * whatever reaches the output file is made of these bytes only.
 *
 * A host that handed the VMM a page of string output per exit would make one
 * `rep outsb` of 4 KiB one exit; KVM makes it 4096 (its emulator's em_out
 * passes one element per exit, on VT-x and SVM as on the PVM back end). */
#include "guest.inc"
    .code64
    .globl _start
_start:
    cld
    mov flood_bytes(%rip), %rbx    /* bytes still to write */
    movzwl flood_port(%rip), %edx
.Lblock:
    test %rbx, %rbx
    jz .Ldone
    mov $4096, %ecx
    cmp %rcx, %rbx
    cmovb %rbx, %rcx               /* the last block may be short */
    sub %rcx, %rbx
    lea block(%rip), %rsi
    rep outsb
    jmp .Lblock
.Ldone:
    EXIT 0x46
    /* Not reached: the debug-exit write stops the VM. */
    cli
    hlt

    .balign 8
flood_bytes: .quad 0x10000
flood_port: .word COM1

    .balign 64
block:
    .rept 63
    .ascii "flood abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcde\n"
    .endr
    .rept 63
    .ascii "."
    .endr
    .ascii "\n"

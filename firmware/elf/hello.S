/* Hello as an ELF64 executable: linked at 0x100000 as ET_EXEC and loaded by
 * its program headers, entered in 64-bit long mode at _start with the VMM's
 * identity map.
 *
 * A loader must zero p_memsz - p_filesz bytes after each segment's file
 * contents (.bss). This guest checks that its 4 KiB .bss buffer reads as zero,
 * prints "Hello from an ELF guest!\n" then "bss ok\n" (or "bss not zero\n"),
 * and exits with status 0 (or 2 if .bss was not zero). */
#include "guest.inc"

#define BUFFER_SIZE 4096

    .code64
    .globl _start
    .text
_start:
    /* The ELF format promises an entry point no stack, so bring one rather
     * than depend on where the VMM happens to put RSP. */
    lea stack_top(%rip), %rsp
    PUTS64 msg_hello

    /* repe scasq stops at the first quadword that differs from RAX = 0. */
    cld
    lea buffer(%rip), %rdi
    xor %eax, %eax
    mov $(BUFFER_SIZE / 8), %ecx
    repe scasq
    jne bss_dirty

    PUTS64 msg_bss_ok
    EXIT 0
bss_dirty:
    PUTS64 msg_bss_dirty
    EXIT 2
    cli
    hlt

DEFINE_PUTS64

    .section .rodata
msg_hello:      .asciz "Hello from an ELF guest!\n"
msg_bss_ok:     .asciz "bss ok\n"
msg_bss_dirty:  .asciz "bss not zero\n"

    /* .bss: no bytes in the file, p_memsz > p_filesz in the program header. */
    .lcomm buffer, BUFFER_SIZE
    .bss
    .balign 16
stack:
    .skip 4096
stack_top:

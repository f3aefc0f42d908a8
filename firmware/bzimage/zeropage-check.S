/* zeropage-check: a tiny bzImage that reports the zero page it was booted with.
 *
 * A kernel image in the Linux x86 boot protocol's bzImage format
 * (Documentation/arch/x86/boot.rst, protocol 2.15), small enough to run in
 * a few thousand instructions, for testing swiftvmm's Linux loader
 * (Sources/X86Boot/LinuxBootLoader.swift) end to end. Linked at 0 as a flat
 * binary, so file offsets are addresses in this source:
 *
 *   0x000  boot sector: a 16-bit stub, then the setup header at 0x1f1
 *          (boot_flag 0xaa55 at 0x1fe, "HdrS" at 0x202), up to 0x26c
 *   0x26c  real-mode setup entry (the jump at 0x200 lands here): unsupported
 *   0x400  protected-mode kernel, loaded by the VMM at 0x100000
 *          (setup_sects = 1, so it starts at (1 + 1) * 512):
 *     +0x000  32-bit entry (code32_start): unsupported
 *     +0x200  64-bit entry: what swiftvmm enters, with RSI = boot_params
 *
 * The two unsupported entries end the VM with debug-exit status 2. The
 * 64-bit code is position-independent (RIP-relative only), runs on its own
 * stack inside the image, and prints to COM1, one line each:
 *
 *   zeropage: entry=E boot_params=P interrupts=off|on
 *   zeropage: loader=XX
 *   zeropage: cmdline=<the command line, at most 2047 bytes>
 *   zeropage: cmdline_ptr=XXXXXXXXXXXXXXXX
 *   zeropage: initrd=XXXXXXXXXXXXXXXX size=XXXXXXXXXXXXXXXX
 *   zeropage: initrd_sum=XXXXXXXXXXXXXXXX initrd_weighted=XXXXXXXXXXXXXXXX
 *   zeropage: e820 count=NN
 *   zeropage: e820 AAAAAAAAAAAAAAAA SSSSSSSSSSSSSSSS TTTTTTTT    (one per entry)
 *   zeropage: acpi_rsdp=XXXXXXXXXXXXXXXX
 *   zeropage: hdrs=OK|BAD version=XXXX
 *   zeropage: done
 *
 * then exits with debug-exit status 0. All numbers are lower-case hex. E and
 * P are 16 digits: the entry's own address and RSI. 64-bit pointers and sizes
 * combine the low and ext_ halves: cmd_line_ptr (0x228) | ext_cmd_line_ptr
 * (0x0c8) << 32, ramdisk_image (0x218) | ext_ramdisk_image (0x0c0) << 32,
 * ramdisk_size (0x21c) | ext_ramdisk_size (0x0c4) << 32.
 *
 * The initrd checksum reads it as little-endian u64 words w[0..n), the last
 * one zero-padded if the size is not a multiple of 8: initrd_sum = w[0] +
 * ... + w[n-1] and initrd_weighted = n*w[0] + (n-1)*w[1] + ... + 1*w[n-1]
 * (the sum of the running sums), both mod 2^64. The weighted sum catches
 * moved or swapped words that a plain sum would miss. At most 128 E820
 * entries (the table's size) are printed, whatever e820_entries says. */
#include "guest.inc"

#define SETUP_SECTS     1
#define PM_START        ((SETUP_SECTS + 1) * 512)  /* file offset of the protected-mode kernel */
#define XLF_KERNEL_64   (1 << 0)
#define XLF_CAN_BE_LOADED_ABOVE_4G (1 << 1)
#define HDRS_MAGIC      0x53726448      /* "HdrS" */

/* boot_params offsets (arch/x86/include/uapi/asm/bootparam.h) */
#define BP_ACPI_RSDP    0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HEADER       0x202
#define BP_VERSION      0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_E820_TABLE   0x2d0
#define E820_MAX        128
#define CMDLINE_MAX     2047

/* One setup-header field: \directive \value at file offset \offset. The
 * .org puts each field where boot.rst says and fails the build if fields overlap. */
.macro FIELD offset, directive, value
    .org \offset
    \directive \value
.endm

/* Print the string at \label, then rax as \digits hex digits. */
.macro SAY_HEX label, digits
    push %rax
    PUTS64 \label
    pop %rax
    PUTHEX64 \digits
.endm

    .text
    .globl _start

/* ---- Boot sector (never run by swiftvmm; a BIOS would run it at 0x7c00) ---- */
    .code16
_start:
    EXIT 2
    cli
    hlt

/* ---- Setup header, boot.rst "THE REAL-MODE KERNEL HEADER" ---- */
    FIELD 0x1f1, .byte, SETUP_SECTS                 /* setup_sects */
    FIELD 0x1f2, .word, 0                           /* root_flags */
    FIELD 0x1f4, .long, (pm_end - pm_start) / 16    /* syssize: 16-byte paragraphs */
    FIELD 0x1f8, .word, 0                           /* ram_size (obsolete) */
    FIELD 0x1fa, .word, 0xffff                      /* vid_mode: normal */
    FIELD 0x1fc, .word, 0                           /* root_dev */
    FIELD 0x1fe, .word, 0xaa55                      /* boot_flag */
    .org 0x200                                      /* jump: short jmp over the header */
    .byte 0xeb, setup_entry - header
header:
    .org 0x202
    .ascii "HdrS"                                   /* header */
    FIELD 0x206, .word, 0x020f                      /* version: 2.15 */
    FIELD 0x208, .long, 0                           /* realmode_swtch */
    FIELD 0x20c, .word, 0x1000                      /* start_sys_seg (obsolete) */
    FIELD 0x20e, .word, kernel_version - 0x200 - _start  /* kernel_version: offset from 0x200 */
    FIELD 0x210, .byte, 0                           /* type_of_loader: the loader fills it */
    FIELD 0x211, .byte, 0x01                        /* loadflags: LOADED_HIGH */
    FIELD 0x212, .word, 0                           /* setup_move_size */
    FIELD 0x214, .long, 0x100000                    /* code32_start */
    FIELD 0x218, .long, 0                           /* ramdisk_image */
    FIELD 0x21c, .long, 0                           /* ramdisk_size */
    FIELD 0x220, .long, 0                           /* bootsect_kludge */
    FIELD 0x224, .word, 0                           /* heap_end_ptr */
    FIELD 0x226, .byte, 0                           /* ext_loader_ver */
    FIELD 0x227, .byte, 0                           /* ext_loader_type */
    FIELD 0x228, .long, 0                           /* cmd_line_ptr */
    FIELD 0x22c, .long, 0x7fffffff                  /* initrd_addr_max */
    FIELD 0x230, .long, 0x200000                    /* kernel_alignment */
    FIELD 0x234, .byte, 1                           /* relocatable_kernel */
    FIELD 0x235, .byte, 21                          /* min_alignment: 2^21 */
    FIELD 0x236, .word, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G  /* xloadflags */
    FIELD 0x238, .long, CMDLINE_MAX                 /* cmdline_size */
    FIELD 0x23c, .long, 0                           /* hardware_subarch: default PC */
    FIELD 0x240, .quad, 0                           /* hardware_subarch_data */
    FIELD 0x248, .long, 0                           /* payload_offset: no compressed payload */
    FIELD 0x24c, .long, 0                           /* payload_length */
    FIELD 0x250, .quad, 0                           /* setup_data */
    FIELD 0x258, .quad, 0x100000                    /* pref_address */
    FIELD 0x260, .long, (pm_end - pm_start + 0xfff) & ~0xfff  /* init_size: the image, in whole pages */
    FIELD 0x264, .long, 0                           /* handover_offset: no EFI handover */
    FIELD 0x268, .long, 0                           /* kernel_info_offset */
    .org 0x26c
setup_entry:                    /* the real-mode setup entry (0x200 jumps here): not supported */
    EXIT 2
    cli
    hlt
kernel_version:
    .asciz "zeropage-check (swiftvmm test kernel)"

/* ---- Protected-mode kernel, loaded at 0x100000 ---- */
    .org PM_START
pm_start:
    .code32
startup_32:                     /* the 32-bit entry: not supported */
    EXIT 2
    cli
    hlt

    .org PM_START + 0x200
    .code64
startup_64:                     /* the 64-bit entry: RSI = boot_params */
    lea startup_64(%rip), %r14
    mov %rsi, %r15
    lea stack_top(%rip), %rsp
    pushfq
    pop %r13
    cli

    mov %r14, %rax
    SAY_HEX s_entry, 16
    mov %r15, %rax
    SAY_HEX s_boot_params, 16
    PUTS64 s_interrupts
    lea s_off(%rip), %rsi
    bt $9, %r13                 /* RFLAGS.IF at entry */
    jnc 1f
    lea s_on(%rip), %rsi
1:  call puts64

    movzbl BP_TYPE_OF_LOADER(%r15), %eax
    SAY_HEX s_loader, 2

    /* The command line: printed up to its NUL, at most cmdline_size bytes. */
    mov BP_CMD_LINE_PTR(%r15), %r12d
    mov BP_EXT_CMD_LINE_PTR(%r15), %eax
    shl $32, %rax
    or %rax, %r12
    PUTS64 s_cmdline
    mov %r12, %rsi
    mov $CMDLINE_MAX, %ecx
    mov $COM1, %dx
2:  lodsb
    test %al, %al
    jz 3f
    out %al, %dx
    dec %ecx
    jnz 2b
3:  mov %r12, %rax
    SAY_HEX s_cmdline_ptr, 16

    /* The initrd: where and how big. */
    mov BP_RAMDISK_IMAGE(%r15), %r12d
    mov BP_EXT_RAMDISK_IMAGE(%r15), %eax
    shl $32, %rax
    or %rax, %r12
    mov BP_RAMDISK_SIZE(%r15), %r13d
    mov BP_EXT_RAMDISK_SIZE(%r15), %eax
    shl $32, %rax
    or %rax, %r13
    mov %r12, %rax
    SAY_HEX s_initrd, 16
    mov %r13, %rax
    SAY_HEX s_size, 16

    /* Its checksum: r8 = sum of words, r9 = sum of running sums. */
    xor %r8d, %r8d
    xor %r9d, %r9d
    mov %r12, %rdi
    mov %r13, %r10
    shr $5, %r10                /* blocks of four words */
    jz 5f
4:  add (%rdi), %r8
    add %r8, %r9
    add 8(%rdi), %r8
    add %r8, %r9
    add 16(%rdi), %r8
    add %r8, %r9
    add 24(%rdi), %r8
    add %r8, %r9
    add $32, %rdi
    dec %r10
    jnz 4b
5:  mov %r13, %r10
    and $31, %r10d
    shr $3, %r10d               /* the remaining whole words */
    jz 7f
6:  add (%rdi), %r8
    add %r8, %r9
    add $8, %rdi
    dec %r10d
    jnz 6b
7:  mov %r13, %rcx
    and $7, %ecx                /* the last bytes, zero-padded into one word */
    jz 9f
    xor %eax, %eax
8:  shl $8, %rax
    movzbl -1(%rdi,%rcx), %r10d
    or %r10, %rax
    dec %ecx
    jnz 8b
    add %rax, %r8
    add %r8, %r9
9:  mov %r9, %rbx
    mov %r8, %rax
    SAY_HEX s_sum, 16
    mov %rbx, %rax
    SAY_HEX s_weighted, 16

    /* The E820 table. */
    movzbl BP_E820_ENTRIES(%r15), %r12d
    mov %r12, %rax
    SAY_HEX s_e820_count, 2
    cmp $E820_MAX, %r12d
    jbe 10f
    mov $E820_MAX, %r12d
10: lea BP_E820_TABLE(%r15), %rbx
    test %r12d, %r12d
    jz 12f
11: mov (%rbx), %rax            /* addr */
    SAY_HEX s_e820, 16
    mov 8(%rbx), %rax           /* size */
    SAY_HEX s_space, 16
    mov 16(%rbx), %eax          /* type */
    SAY_HEX s_space, 8
    add $20, %rbx
    dec %r12d
    jnz 11b

12: mov BP_ACPI_RSDP(%r15), %rax
    SAY_HEX s_acpi, 16

    PUTS64 s_hdrs
    lea s_ok(%rip), %rsi
    cmpl $HDRS_MAGIC, BP_HEADER(%r15)
    je 13f
    lea s_bad(%rip), %rsi
13: call puts64
    movzwl BP_VERSION(%r15), %eax
    SAY_HEX s_version, 4
    PUTS64 s_done
    EXIT 0
    cli
    hlt

    DEFINE_PUTS64
    DEFINE_PUTHEX64

/* Each string but the first starts by ending the line before it. */
s_entry:        .asciz "zeropage: entry="
s_boot_params:  .asciz " boot_params="
s_interrupts:   .asciz " interrupts="
s_off:          .asciz "off"
s_on:           .asciz "on"
s_loader:       .asciz "\nzeropage: loader="
s_cmdline:      .asciz "\nzeropage: cmdline="
s_cmdline_ptr:  .asciz "\nzeropage: cmdline_ptr="
s_initrd:       .asciz "\nzeropage: initrd="
s_size:         .asciz " size="
s_sum:          .asciz "\nzeropage: initrd_sum="
s_weighted:     .asciz " initrd_weighted="
s_e820_count:   .asciz "\nzeropage: e820 count="
s_e820:         .asciz "\nzeropage: e820 "
s_space:        .asciz " "
s_acpi:         .asciz "\nzeropage: acpi_rsdp="
s_hdrs:         .asciz "\nzeropage: hdrs="
s_ok:           .asciz "OK"
s_bad:          .asciz "BAD"
s_version:      .asciz " version="
s_done:         .asciz "\nzeropage: done\n"

    .balign 16
stack:
    .skip 256
stack_top:
pm_end:                         /* syssize and init_size count up to here (16-byte aligned) */

/* Freestanding support for the C guests in firmware/multiboot/: types, port
 * I/O, COM1 text output and input, the debug-exit port, the few libc
 * functions clang may call on its own (memset, memcpy), and the Multiboot
 * header and entry point.
 *
 * Header-only on purpose: FirmwareEmbedder builds each guest from one
 * translation unit, so a guest includes what it needs. Everything is
 * `static inline` (unused helpers cost nothing and raise no warning), except
 * memset/memcpy, which must have external linkage for the calls clang emits. */
#ifndef SWIFTVMM_GUEST_C_H
#define SWIFTVMM_GUEST_C_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long uptr;

#define COM1 0x3f8
#define COM1_LSR 0x3fd
#define DEBUG_EXIT 0xf4

#define MULTIBOOT_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u

/* The Multiboot header (flags: page-aligned modules, memory information), a
 * stack of `stack_bytes` in .bss, and `_start`, which calls
 * `void kernel_main(u32 magic, u32 info)` and halts if it returns. */
#define MULTIBOOT_GUEST(stack_bytes)                                                                          \
    __attribute__((section(".multiboot"), used, aligned(4))) static const u32 multiboot_header[3] = {         \
        MULTIBOOT_MAGIC, 3u, (u32) - (MULTIBOOT_MAGIC + 3u)};                                                 \
    u8 guest_stack[stack_bytes] __attribute__((aligned(16)));                                                 \
    void kernel_main(u32 magic, u32 info);                                                                    \
    __asm__(".section .text.start, \"ax\"\n"                                                                  \
            ".globl _start\n"                                                                                 \
            "_start:\n"                                                                                       \
            "    mov $guest_stack + " #stack_bytes ", %esp\n"                                                 \
            "    push %ebx\n"                                                                                 \
            "    push %eax\n"                                                                                 \
            "    call kernel_main\n"                                                                          \
            "1:  cli\n"                                                                                       \
            "    hlt\n"                                                                                       \
            "    jmp 1b\n"                                                                                    \
            ".previous\n");

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outw(u16 port, u16 value) { __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) {
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

/* MMIO: volatile accesses of exactly the width asked for. */
static inline u32 mmio_read32(uptr address) { return *(volatile u32 *)address; }
static inline void mmio_write32(uptr address, u32 value) { *(volatile u32 *)address = value; }
static inline u8 mmio_read8(uptr address) { return *(volatile u8 *)address; }
static inline u16 mmio_read16(uptr address) { return *(volatile u16 *)address; }
static inline void mmio_write8(uptr address, u8 value) { *(volatile u8 *)address = value; }
static inline void mmio_write16(uptr address, u16 value) { *(volatile u16 *)address = value; }

/* Orders the guest's own stores and loads against the device's (x86 needs only
 * the store-load fence; a locked add is one the host emulates everywhere). */
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void full_barrier(void) { __asm__ volatile("lock; addl $0, (%%esp)" ::: "memory", "cc"); }

void *memset(void *destination, int value, unsigned long count);
void *memcpy(void *destination, const void *source, unsigned long count);
void *memset(void *destination, int value, unsigned long count) {
    u8 *d = destination;
    while (count--) *d++ = (u8)value;
    return destination;
}
void *memcpy(void *destination, const void *source, unsigned long count) {
    u8 *d = destination;
    const u8 *s = source;
    while (count--) *d++ = *s++;
    return destination;
}

static inline u32 string_length(const char *s) {
    u32 n = 0;
    while (s[n]) n++;
    return n;
}
/* Whether the n bytes at a and b are equal. */
static inline int bytes_equal(const void *a, const void *b, u32 n) {
    const u8 *x = a, *y = b;
    for (u32 i = 0; i < n; i++)
        if (x[i] != y[i]) return 0;
    return 1;
}

static inline void putc(char c) { outb(COM1, (u8)c); }
static inline void puts(const char *s) {
    while (*s) putc(*s++);
}
/* `digits` hex digits, zero-padded, with a 0x prefix. */
static inline void puthex(u64 value, int digits) {
    puts("0x");
    for (int i = digits - 1; i >= 0; i--) putc("0123456789abcdef"[(value >> (i * 4)) & 0xf]);
}
static inline void putdec(u32 value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (n) putc(digits[--n]);
}
/* n bytes as lower-case hex pairs, no separator. */
static inline void putbytes(const u8 *bytes, u32 n) {
    for (u32 i = 0; i < n; i++) {
        putc("0123456789abcdef"[bytes[i] >> 4]);
        putc("0123456789abcdef"[bytes[i] & 15]);
    }
}
/* n bytes quoted, unprintable ones as '.'. */
static inline void putquoted(const u8 *bytes, u32 n) {
    putc('\'');
    for (u32 i = 0; i < n; i++) putc(bytes[i] >= 0x20 && bytes[i] < 0x7f ? (char)bytes[i] : '.');
    putc('\'');
}

/* Waits for a byte on COM1 (polling LSR.DR) and returns it. */
static inline u8 getc_com1(void) {
    while (!(inb(COM1_LSR) & 1)) {
    }
    return inb(COM1);
}

static inline __attribute__((noreturn)) void exit_with(u32 status) {
    outl(DEBUG_EXIT, status);
    for (;;) __asm__ volatile("cli; hlt");
}

/* The Multiboot command line, or "" when the loader gave none. */
static inline const char *multiboot_command_line(u32 info) {
    u32 flags = *(volatile u32 *)(uptr)info;
    if (!(flags & (1u << 2))) return "";
    return (const char *)(uptr)*(volatile u32 *)(uptr)(info + 16);
}

#endif

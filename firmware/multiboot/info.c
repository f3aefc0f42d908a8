/* A Multiboot (version 1) kernel, as the OSDev tutorials and QEMU test suites
 * write them: it checks the boot loader's magic, walks the information
 * structure, memory map and module list, reads fw_cfg, prints what it found
 * on COM1 one line each, writes a line to COM2 and one to the debug console
 * (port 0xe9), and ends through the debug-exit port.
 *
 * COM1 output (hex numbers zero-padded, 8 or 16 digits):
 *   multiboot: eax=0x2badb002 ebx=0x00009000 flags=0x........
 *   mem_lower=0x........ mem_upper=0x........          (KiB, flags bit 0)
 *   mmap 0x<base 16> 0x<length 16> type=0x........     (one per entry, flags bit 6)
 *   cmdline '<text>'                                   (flags bit 2)
 *   modules 0x........                                 (flags bit 3)
 *   module 0x<start> 0x<end> '<cmdline>' data '<first 16 bytes, . if unprintable>'
 *   boot_loader_name '<text>'                          (flags bit 9)
 *   bss zero
 *   fw_cfg signature 'QEMU' id 0x........
 *   fw_cfg ram 0x<16> cpus 0x.... max_cpus 0x....
 *   fw_cfg cmdline size 0x........ '<text>'
 *   fw_cfg file 0x<select 4> 0x<size 8> <name>         (one per directory entry)
 *   fw_cfg reserved-memory-end 0x<16>
 *   done
 * Ends with debugExit(0); 2 if EAX is not 0x2BADB002 ("bad magic ..."), 3 if
 * the fw_cfg signature is wrong, 4 if .bss was not zero. */

#define MULTIBOOT_MAGIC 0x1BADB002u
#define MULTIBOOT_FLAGS 0x00000003u /* bit 0 page-aligned modules, bit 1 memory info */
#define BOOTLOADER_MAGIC 0x2BADB002u

#define COM1 0x3f8
#define COM2 0x2f8
#define DEBUGCON 0xe9
#define DEBUG_EXIT 0xf4
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

__attribute__((section(".multiboot"), used, aligned(4))) static const u32 multiboot_header[3] = {
    MULTIBOOT_MAGIC, MULTIBOOT_FLAGS, (u32)-(MULTIBOOT_MAGIC + MULTIBOOT_FLAGS)};

/* The stack and a canary the loader must have zeroed, both in .bss. */
u8 guest_stack[8192] __attribute__((aligned(16)));
static volatile u32 bss_canary[16];

void kernel_main(u32 magic, u32 info);

/* The Multiboot state: EAX = magic, EBX = information structure; ESP is ours to set. */
__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "    mov $guest_stack + 8192, %esp\n"
        "    push %ebx\n"
        "    push %eax\n"
        "    call kernel_main\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n"
        ".previous\n");

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outw(u16 port, u16 value) { __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port)); }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) {
    u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port));
    return value;
}

static void puts_to(u16 port, const char *s) {
    while (*s) outb(port, (u8)*s++);
}
static void puts(const char *s) { puts_to(COM1, s); }
static void puthex(u64 value, int digits) {
    puts("0x");
    for (int i = digits - 1; i >= 0; i--) outb(COM1, (u8)"0123456789abcdef"[(value >> (i * 4)) & 0xf]);
}
/* A quoted string of at most max bytes, unprintable bytes as '.'. */
static void putquoted(const u8 *s, u32 max, int stop_at_nul) {
    outb(COM1, '\'');
    for (u32 i = 0; i < max; i++) {
        if (stop_at_nul && s[i] == 0) break;
        outb(COM1, s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '.');
    }
    outb(COM1, '\'');
}

static __attribute__((noreturn)) void exit_with(u32 status) {
    outl(DEBUG_EXIT, status);
    for (;;) __asm__ volatile("cli; hlt");
}

static inline u32 u32_at(u32 address) { return *(volatile u32 *)address; }
static inline u64 u64_at(u32 address) { return *(volatile u32 *)address | (u64) * (volatile u32 *)(address + 4) << 32; }

static void fw_cfg_select(u16 key) { outw(FW_CFG_SELECTOR, key); }
static void fw_cfg_read(void *buffer, u32 length) {
    for (u32 i = 0; i < length; i++) ((u8 *)buffer)[i] = inb(FW_CFG_DATA);
}
static u64 fw_cfg_le(u16 key, int bytes) {
    u8 raw[8] = {0};
    fw_cfg_select(key);
    fw_cfg_read(raw, (u32)bytes);
    u64 value = 0;
    for (int i = bytes - 1; i >= 0; i--) value = value << 8 | raw[i];
    return value;
}
static u32 be32(const u8 *p) { return (u32)p[0] << 24 | (u32)p[1] << 16 | (u32)p[2] << 8 | p[3]; }

static void report_fw_cfg(void) {
    u8 signature[4];
    fw_cfg_select(0x0000);
    fw_cfg_read(signature, 4);
    puts("fw_cfg signature ");
    putquoted(signature, 4, 0);
    puts(" id ");
    puthex(fw_cfg_le(0x0001, 4), 8);
    puts("\n");
    if (signature[0] != 'Q' || signature[1] != 'E' || signature[2] != 'M' || signature[3] != 'U') exit_with(3);

    puts("fw_cfg ram ");
    puthex(fw_cfg_le(0x0003, 8), 16);
    puts(" cpus ");
    puthex(fw_cfg_le(0x0005, 2), 4);
    puts(" max_cpus ");
    puthex(fw_cfg_le(0x000f, 2), 4);
    puts("\n");

    u32 size = (u32)fw_cfg_le(0x0014, 4);
    u8 line[128];
    u32 length = size < sizeof line ? size : sizeof line;
    fw_cfg_select(0x0015);
    fw_cfg_read(line, length);
    puts("fw_cfg cmdline size ");
    puthex(size, 8);
    puts(" ");
    putquoted(line, length, 1);
    puts("\n");

    u8 count_be[4];
    fw_cfg_select(0x0019);
    fw_cfg_read(count_be, 4);
    u32 count = be32(count_be);
    u16 reserved_end_key = 0;
    for (u32 i = 0; i < count && i < 16; i++) {
        u8 entry[64];
        fw_cfg_read(entry, 64);
        u16 select = (u16)(entry[4] << 8 | entry[5]);
        puts("fw_cfg file ");
        puthex(select, 4);
        puts(" ");
        puthex(be32(entry), 8);
        puts(" ");
        entry[63] = 0;
        puts((const char *)entry + 8);
        puts("\n");
        const char *wanted = "etc/reserved-memory-end";
        int same = 1;
        for (int j = 0; wanted[j] || entry[8 + j]; j++)
            if (wanted[j] != entry[8 + j]) {
                same = 0;
                break;
            }
        if (same) reserved_end_key = select;
    }
    if (reserved_end_key) {
        puts("fw_cfg reserved-memory-end ");
        puthex(fw_cfg_le(reserved_end_key, 8), 16);
        puts("\n");
    }
}

void kernel_main(u32 magic, u32 info) {
    puts("multiboot: eax=");
    puthex(magic, 8);
    puts(" ebx=");
    puthex(info, 8);
    if (magic != BOOTLOADER_MAGIC) {
        puts("\nbad magic\n");
        exit_with(2);
    }
    u32 flags = u32_at(info);
    puts(" flags=");
    puthex(flags, 8);
    puts("\n");

    if (flags & (1u << 0)) {
        puts("mem_lower=");
        puthex(u32_at(info + 4), 8);
        puts(" mem_upper=");
        puthex(u32_at(info + 8), 8);
        puts("\n");
    }
    if (flags & (1u << 6)) {
        u32 address = u32_at(info + 48), end = address + u32_at(info + 44);
        /* Each entry starts with its size, which does not count itself. */
        while (address < end) {
            puts("mmap ");
            puthex(u64_at(address + 4), 16);
            puts(" ");
            puthex(u64_at(address + 12), 16);
            puts(" type=");
            puthex(u32_at(address + 20), 8);
            puts("\n");
            address += u32_at(address) + 4;
        }
    }
    if (flags & (1u << 2)) {
        puts("cmdline ");
        putquoted((const u8 *)u32_at(info + 16), 256, 1);
        puts("\n");
    }
    if (flags & (1u << 3)) {
        u32 count = u32_at(info + 20), list = u32_at(info + 24);
        puts("modules ");
        puthex(count, 8);
        puts("\n");
        for (u32 i = 0; i < count; i++) {
            u32 entry = list + i * 16, start = u32_at(entry), end = u32_at(entry + 4);
            puts("module ");
            puthex(start, 8);
            puts(" ");
            puthex(end, 8);
            puts(" ");
            putquoted((const u8 *)u32_at(entry + 8), 256, 1);
            puts(" data ");
            putquoted((const u8 *)start, end - start < 16 ? end - start : 16, 0);
            puts("\n");
        }
    }
    if (flags & (1u << 9)) {
        puts("boot_loader_name ");
        putquoted((const u8 *)u32_at(info + 64), 64, 1);
        puts("\n");
    }

    u32 nonzero = 0;
    for (int i = 0; i < 16; i++) nonzero |= bss_canary[i];
    puts(nonzero ? "bss not zero\n" : "bss zero\n");

    report_fw_cfg();

    puts_to(COM2, "multiboot guest on COM2\n");
    puts_to(DEBUGCON, "multiboot guest on debugcon\n");
    puts("done\n");
    exit_with(nonzero ? 4 : 0);
}

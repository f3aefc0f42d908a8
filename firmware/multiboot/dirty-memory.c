/* The live-migration guest: keeps rewriting a working set of memory from
 * ring 3 and prints one checksum line per pass over it, so that a migrated
 * run can be compared line for line with an uninterrupted one. Boots on
 * swiftvmm (`--kernel`, PC platform) and on QEMU (`-kernel`, Multiboot).
 *
 * Command line (anything else is ignored, such as the kernel path QEMU puts
 * first):
 *   ws=SIZE    working set, bytes with an optional K, M or G suffix, a
 *              multiple of 4 KiB (default 4M), from 16 MiB up; it must fit
 *              the usable RAM region the memory map gives there
 *   rate=N     dirty about N MiB/s: each 256 KiB waits for its share of
 *              PIT channel 0's ticks (100 Hz, IOAPIC pin 2, vector 0x30,
 *              taken in ring 3); 0 or absent: as fast as it can, IF clear
 *   iters=N    passes over the working set (idle: lines); 0: until stopped
 *              (default 8)
 *   idle       touch nothing: halt in ring 0 with the PIT ticking (~18.2 Hz,
 *              IOAPIC pin 2, vector 0x30) and print a line every 16 ticks
 *              (~0.88 s)
 *
 * Output on COM1, all of it a function of the command line only:
 *   dirty: ws N KiB at 0x01000000, rate R MiB/s, I passes   (I = 0: forever)
 *   pass P sum 0xSSSSSSSSSSSSSSSS        one per pass, P from 1
 *   dirty: done P passes, sum 0xSSSSSSSSSSSSSSSS, errors E
 * or, idle:
 *   dirty: idle, 16 ticks a line, I lines
 *   idle L                               one per 16 ticks, L from 1
 *   dirty: idle done
 *
 * Pass p (from 1) reads each 64-bit word i of the working set, checks it
 * holds what pass p-1 wrote (0 before pass 1: fresh RAM), folds it into the
 * pass's sum (FNV-1a-like over words, from 0xcbf29ce484222325:
 * sum = ror((sum ^ word) * 0x100000001b3, 17); each step is a bijection, so
 * one word that differs always changes the sum) and writes v(p, i) = ((i + 1) * 0x9e3779b97f4a7c15)
 * ^ (p * 0xd6e8feb86659fd93). The `pass` line gives the sum of what the pass
 * found, so pass 1 always prints the sum of zeros and a page lost or stale
 * after a migration changes the next line. The final line sums and checks
 * what the last pass wrote; `errors` counts words that were not what was
 * written there. Exit (debug-exit port 0xf4): 0x20 done without errors
 * (QEMU's isa-debug-exit: 0x41), 7 errors, 3 bad command line or working set,
 * 0x7e an unexpected exception (its vector and RIP printed first).
 *
 * How it runs: 32-bit C parses the command line, checks the memory map,
 * masks the PICs, starts the PIT (idle, rate=) and builds page tables
 * (identity, first 4 GiB, 2 MiB pages, user-accessible), a GDT with ring-0
 * and ring-3 64-bit segments, a TSS and an IDT; then it enters long mode
 * (idle: halts there in ring 0) and `iretq`s to the ring-3 worker. Ring 3 runs
 * natively on hosts that emulate ring 0 (KVM's PVM back end); it asks ring
 * 0 to print and to exit with `hlt`, which faults (#GP) at CPL 3 on every
 * x86: the #GP handler reads RAX (1: pass line, 2: final line and exit),
 * steps over the `hlt` and returns. No `iret` in 32-bit ring 0, which PVM
 * cannot emulate. */
#include "guest_c.h"

MULTIBOOT_GUEST(8192)

#define WS_BASE 0x1000000u
#define EXIT_DONE 0x20
#define EXIT_BAD_ARGUMENT 3
#define EXIT_ERRORS 7
#define TIMER_VECTOR 0x30
#define TICKS_PER_LINE 16

/* Read by the 64-bit code below (by name). */
u64 ws_base, ws_qwords, iterations, rate_mib, user_rflags = 2, chunk_qwords = (256u << 10) / 8;
u32 idle_mode;

/* Paging, segments and the interrupt table; .bss, so zero on entry. */
u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 page_directories[4][512] __attribute__((aligned(4096)));
u64 idt[512] __attribute__((aligned(4096)));
u64 gdt[8] __attribute__((aligned(16)));
u32 tss[26] __attribute__((aligned(16)));
u8 kernel_stack[8192] __attribute__((aligned(16)));
u8 user_stack[8192] __attribute__((aligned(16)));

/* In the assembly below. */
extern const u32 exception_stubs[32];
void gp_handler(void);
void timer_handler(void);
__attribute__((noreturn)) void enter_long_mode(void);

/* Selectors of the GDT below. */
#define KERNEL_CODE 0x08
#define KERNEL_DATA 0x10
#define USER_DATA 0x18
#define USER_CODE 0x20
#define TSS_SELECTOR 0x28

/* "64M" -> 64 << 20; 0 when it is not a number with an optional K/M/G. */
static u64 parse_size(const char *s, const char **end) {
    u64 value = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') value = value * 10 + (u64)(*s++ - '0'), digits++;
    if (*s == 'K' || *s == 'k') value <<= 10, s++;
    else if (*s == 'M' || *s == 'm') value <<= 20, s++;
    else if (*s == 'G' || *s == 'g') value <<= 30, s++;
    *end = s;
    return digits ? value : 0;
}

/* Whether `token` (up to a space) starts with `key`; *value is what follows. */
static int option(const char *token, const char *key, const char **value) {
    while (*key)
        if (*token++ != *key++) return 0;
    *value = token;
    return 1;
}

static __attribute__((noreturn)) void bad_argument(const char *why) {
    puts("dirty: ");
    puts(why);
    puts("\n");
    exit_with(EXIT_BAD_ARGUMENT);
}

/* The end of the usable RAM region holding WS_BASE, from the Multiboot
 * memory map (flags bit 6) or else mem_upper (bit 0). */
static u64 usable_end(u32 info) {
    u32 flags = *(volatile u32 *)info;
    if (flags & (1u << 6)) {
        u32 length = *(volatile u32 *)(info + 44), address = *(volatile u32 *)(info + 48);
        for (u32 entry = address; entry < address + length; entry += *(volatile u32 *)entry + 4) {
            u64 base = *(volatile u64 *)(entry + 4), size = *(volatile u64 *)(entry + 12);
            u32 type = *(volatile u32 *)(entry + 20);
            if (type == 1 && base <= WS_BASE && WS_BASE < base + size) return base + size;
        }
        return 0;
    }
    if (flags & 1) return 0x100000 + (u64) * (volatile u32 *)(info + 8) * 1024;
    return 0;
}

static void set_gate(u32 vector, u32 handler) {
    idt[vector * 2] = (handler & 0xffff) | ((u64)KERNEL_CODE << 16) | (0x8e00ull << 32) | ((u64)(handler >> 16) << 48);
    idt[vector * 2 + 1] = 0;
}

static void build_tables(void) {
    for (u32 i = 0; i < 4; i++) {
        pdpt[i] = (u32)page_directories[i] | 7;
        for (u32 j = 0; j < 512; j++) page_directories[i][j] = ((u64)(i * 512 + j) << 21) | 0x87; /* P, RW, US, PS */
    }
    pml4[0] = (u32)pdpt | 7;

    gdt[1] = 0x00af9a000000ffffull; /* 0x08 64-bit code, DPL 0 */
    gdt[2] = 0x00cf92000000ffffull; /* 0x10 data, DPL 0 */
    gdt[3] = 0x00cff2000000ffffull; /* 0x18 data, DPL 3 */
    gdt[4] = 0x00affa000000ffffull; /* 0x20 64-bit code, DPL 3 */
    u32 base = (u32)tss, limit = sizeof tss - 1;
    gdt[5] = (limit & 0xffff) | ((u64)(base & 0xffffff) << 16) | (0x89ull << 40) | ((u64)(base >> 24) << 56);
    gdt[6] = 0; /* bits 32-63 of the TSS base */

    u32 stack_top = (u32)kernel_stack + sizeof kernel_stack;
    tss[1] = stack_top; /* RSP0: where a fault from ring 3 lands */
    tss[25] = (u32)sizeof tss << 16; /* I/O map base past the limit: no bitmap */

    for (u32 v = 0; v < 32; v++) set_gate(v, exception_stubs[v]);
    set_gate(13, (u32)gp_handler);
    set_gate(TIMER_VECTOR, (u32)timer_handler);
}

/* ISA IRQ 0 (IOAPIC pin 2, as the MADT's override says on both swiftvmm and
 * QEMU) to vector 0x30, PIT channel 0 as a rate generator (mode 2) with
 * `divisor` (0: 65536). */
static void start_ticking(u16 divisor) {
    mmio_write32(0xfee000f0, 0x1ff);
    mmio_write32(0xfec00000, 0x15);
    mmio_write32(0xfec00010, 0);
    mmio_write32(0xfec00000, 0x14);
    mmio_write32(0xfec00010, TIMER_VECTOR);
    outb(0x43, 0x34);
    outb(0x40, (u8)divisor);
    outb(0x40, (u8)(divisor >> 8));
}

void kernel_main(u32 magic, u32 info) {
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) bad_argument("not started by a Multiboot loader");
    u64 ws = 4u << 20, rate = 0;
    iterations = 8;
    const char *s = multiboot_command_line(info);
    while (*s) {
        while (*s == ' ') s++;
        const char *value, *end = s;
        if (option(s, "ws=", &value)) {
            ws = parse_size(value, &end);
            if (!ws || (ws & 0xfff) || (*end && *end != ' ')) bad_argument("ws= wants a size, a multiple of 4K");
        } else if (option(s, "rate=", &value)) {
            rate = parse_size(value, &end);
            if (*end && *end != ' ') bad_argument("rate= wants MiB/s");
        } else if (option(s, "iters=", &value)) {
            iterations = parse_size(value, &end);
            if (*end && *end != ' ') bad_argument("iters= wants a count");
        } else if (option(s, "idle", &value) && (*value == ' ' || !*value)) {
            idle_mode = 1;
        }
        while (*s && *s != ' ') s++;
    }
    if (iterations >= (1ull << 32) || rate >= (1u << 20)) bad_argument("iters= or rate= out of range");

    outb(0x21, 0xff); /* masked: ring 3 runs with IF clear, but a loader's PIT tick must not wait at the PIC */
    outb(0xa1, 0xff);
    build_tables();
    if (idle_mode) {
        puts("dirty: idle, 16 ticks a line, ");
        putdec((u32)iterations);
        puts(" lines\n");
        start_ticking(0);
        enter_long_mode();
    }

    u64 end = usable_end(info);
    if (end < WS_BASE + ws || ws >= (1ull << 32)) bad_argument("working set does not fit the RAM at 16 MiB");
    ws_base = WS_BASE;
    ws_qwords = ws / 8;
    if (rate) {
        rate_mib = rate;
        user_rflags = 0x202; /* IF: ring 3 takes the ticks it paces itself by */
        start_ticking(11932); /* 100 Hz */
    }
    puts("dirty: ws ");
    putdec((u32)(ws >> 10));
    puts(" KiB at ");
    puthex(WS_BASE, 8);
    puts(", rate ");
    putdec((u32)rate);
    puts(" MiB/s, ");
    putdec((u32)iterations);
    puts(" passes\n");
    enter_long_mode();
}

/* Long mode, the ring-3 worker and the ring-0 handlers. */
__asm__(
    /* 32-bit: GDT, PAE, CR3, EFER.LME, paging, far jump to 64-bit code. */
    ".section .text\n"
    ".code32\n"
    ".globl enter_long_mode\n"
    "enter_long_mode:\n"
    "    cli\n"
    "    lgdt gdt_pointer\n"
    "    mov %cr4, %eax\n"
    "    or $0x20, %eax\n"
    "    mov %eax, %cr4\n"
    "    mov $pml4, %eax\n"
    "    mov %eax, %cr3\n"
    "    mov $0xc0000080, %ecx\n"
    "    rdmsr\n"
    "    or $0x100, %eax\n"
    "    wrmsr\n"
    "    mov %cr0, %eax\n"
    "    or $0x80000000, %eax\n"
    "    mov %eax, %cr0\n"
    "    ljmp $0x08, $long_entry\n"

    ".code64\n"
    "long_entry:\n"
    "    mov $0x10, %eax\n"
    "    mov %ax, %ds\n"
    "    mov %ax, %es\n"
    "    mov %ax, %ss\n"
    "    mov $kernel_stack + 8192, %esp\n"
    "    lidt idt_pointer\n"
    "    mov $0x28, %eax\n"
    "    ltr %ax\n"
    "    cmpl $0, idle_mode\n"
    "    jne idle_loop\n"

    /* iretq pops RIP, CS, RFLAGS (IOPL 0; IF only with rate=), RSP, SS. */
    "    pushq $0x1b\n"
    "    pushq $user_stack + 8192\n"
    "    pushq user_rflags\n"
    "    pushq $0x23\n"
    "    pushq $user_main\n"
    "    iretq\n"

    /* Ring 3. r15 pass, rbx sum, r14 errors, r8 address, rcx words left in
     * the pass, r11 (i + 1) * K1, r12 p * K2, r13 (p - 1) * K2 or 0 masked
     * by r10 (0 in pass 1), rbp the FNV prime, r9 words left in the chunk. */
    "user_main:\n"
    "    xor %r14d, %r14d\n"
    "    mov $1, %r15d\n"
    "    movabs $0x100000001b3, %rbp\n"
    "1:  mov iterations, %rax\n"
    "    test %rax, %rax\n"
    "    jz 2f\n"
    "    cmp %rax, %r15\n"
    "    ja 9f\n"
    "2:  movabs $0xd6e8feb86659fd93, %rax\n"
    "    mov %r15, %r12\n"
    "    imul %rax, %r12\n"
    "    mov %r12, %r13\n"
    "    sub %rax, %r13\n"
    "    xor %r10d, %r10d\n"
    "    cmp $1, %r15\n"
    "    je 3f\n"
    "    not %r10\n"
    "3:  and %r10, %r13\n"
    "    movabs $0xcbf29ce484222325, %rbx\n"
    "    movabs $0x9e3779b97f4a7c15, %r11\n"
    "    mov ws_base, %r8\n"
    "    mov ws_qwords, %rcx\n"
    "4:  mov chunk_qwords, %r9\n"
    "    cmp %rcx, %r9\n"
    "    cmova %rcx, %r9\n"
    "    sub %r9, %rcx\n"
    /* One word: check, fold, rewrite. */
    "5:  mov (%r8), %rax\n"
    "    mov %r11, %rdx\n"
    "    and %r10, %rdx\n"
    "    xor %r13, %rdx\n"
    "    cmp %rdx, %rax\n"
    "    je 6f\n"
    "    inc %r14\n"
    "6:  xor %rax, %rbx\n"
    "    imul %rbp, %rbx\n"
    "    ror $17, %rbx\n"
    "    mov %r11, %rax\n"
    "    xor %r12, %rax\n"
    "    mov %rax, (%r8)\n"
    "    movabs $0x9e3779b97f4a7c15, %rax\n"
    "    add %rax, %r11\n"
    "    add $8, %r8\n"
    "    dec %r9\n"
    "    jnz 5b\n"
    "    call pace\n"
    "    test %rcx, %rcx\n"
    "    jnz 4b\n"
    "    mov $1, %eax\n"
    "    mov %r15, %rdi\n"
    "    mov %rbx, %rsi\n"
    "    hlt\n" /* ring 0 prints `pass P sum S` */
    "    inc %r15\n"
    "    jmp 1b\n"
    /* The last pass's words, read only: r15 - 1 passes were made. */
    "9:  dec %r15\n"
    "    mov %r15, %r12\n"
    "    movabs $0xd6e8feb86659fd93, %rax\n"
    "    imul %rax, %r12\n"
    "    movabs $0xcbf29ce484222325, %rbx\n"
    "    movabs $0x9e3779b97f4a7c15, %r11\n"
    "    mov ws_base, %r8\n"
    "    mov ws_qwords, %rcx\n"
    "10: mov (%r8), %rax\n"
    "    mov %r11, %rdx\n"
    "    xor %r12, %rdx\n"
    "    cmp %rdx, %rax\n"
    "    je 11f\n"
    "    inc %r14\n"
    "11: xor %rax, %rbx\n"
    "    imul %rbp, %rbx\n"
    "    ror $17, %rbx\n"
    "    movabs $0x9e3779b97f4a7c15, %rax\n"
    "    add %rax, %r11\n"
    "    add $8, %r8\n"
    "    dec %rcx\n"
    "    jnz 10b\n"
    "    mov $2, %eax\n"
    "    mov %r15, %rdi\n"
    "    mov %rbx, %rsi\n"
    "    mov %r14, %rdx\n"
    "    hlt\n" /* ring 0 prints the final line and exits */

    /* Waits until the PIT ticks (100 Hz, counted by timer_handler) have
     * paid for the next 256 KiB: each tick earns rate_mib credits, a chunk
     * costs 25 (rate MiB/s for 10 ms is rate / 25 chunks). The ticks are
     * real time even on a loaded host: KVM reinjects those a descheduled
     * vCPU missed. Credit saved while the vCPU did not run (a busy host, a
     * migration's stop) is spent unpaced, up to 0.5 s of it. Spins without
     * `pause`: a pause loop exit makes KVM yield the vCPU thread, which on
     * a loaded host comes back many milliseconds late. Clobbers rax, rdx,
     * rdi. */
    "pace:\n"
    "    mov rate_mib, %rdi\n"
    "    test %rdi, %rdi\n"
    "    jz 13f\n"
    "12: mov ticks, %rax\n"
    "    mov pace_seen, %rdx\n"
    "    mov %rax, pace_seen\n"
    "    sub %rdx, %rax\n"
    "    imul %rdi, %rax\n"
    "    add pace_credit, %rax\n"
    "    imul $50, %rdi, %rdx\n"
    "    cmp %rdx, %rax\n"
    "    cmova %rdx, %rax\n"
    "    mov %rax, pace_credit\n"
    "    cmp $25, %rax\n"
    "    jb 12b\n"
    "    subq $25, pace_credit\n"
    "13: ret\n"

    /* Ring 0 #GP: a `hlt` from ring 3 is a request (RAX), anything else is
     * fatal. The frame: error code, RIP, CS, RFLAGS, RSP, SS. */
    ".globl gp_handler\n"
    "gp_handler:\n"
    "    push %rax\n"
    "    push %rcx\n"
    "    push %rdx\n"
    "    push %rsi\n"
    "    push %rdi\n"
    "    mov 48(%rsp), %rcx\n" /* RIP */
    "    testb $3, 56(%rsp)\n"
    "    jz 20f\n"
    "    cmpb $0xf4, (%rcx)\n"
    "    jne 20f\n"
    "    cmp $1, %rax\n"
    "    je 21f\n"
    "    cmp $2, %rax\n"
    "    je 22f\n"
    "20: pop %rdi\n"
    "    pop %rsi\n"
    "    pop %rdx\n"
    "    pop %rcx\n"
    "    pop %rax\n"
    "    push $13\n"
    "    jmp fatal\n"
    "21: lea pass_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov %rdi, %rax\n"
    "    call putdec64\n"
    "    lea sum_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov 8(%rsp), %rax\n" /* the saved RSI: the sum */
    "    call puthex16\n"
    "    mov $10, %al\n"
    "    call putc64\n"
    "    incq 48(%rsp)\n"
    "    pop %rdi\n"
    "    pop %rsi\n"
    "    pop %rdx\n"
    "    pop %rcx\n"
    "    pop %rax\n"
    "    add $8, %rsp\n"
    "    iretq\n"
    "22: lea done_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov %rdi, %rax\n"
    "    call putdec64\n"
    "    lea done_sum_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov 8(%rsp), %rax\n" /* the saved RSI: the sum */
    "    call puthex16\n"
    "    lea errors_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov 16(%rsp), %rax\n" /* the saved RDX: the errors */
    "    mov %rax, %rdi\n"
    "    call putdec64\n"
    "    mov $10, %al\n"
    "    call putc64\n"
    "    mov $0x20, %eax\n"
    "    test %rdi, %rdi\n"
    "    jz 23f\n"
    "    mov $7, %eax\n"
    "23: mov $0xf4, %edx\n"
    "    out %eax, %dx\n"
    "24: cli\n"
    "    hlt\n"
    "    jmp 24b\n"

    /* Any other exception: the vector is on the stack above the frame
     * (and the error code, for those with one; the RIP is found by the
     * vector). Prints `dirty: exception V at RIP` and exits 0x7e. */
    "fatal:\n"
    "    lea exception_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov (%rsp), %rax\n"
    "    mov %rax, %rdi\n"
    "    call putdec64\n"
    "    lea at_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov $8, %ecx\n"
    "    cmp $8, %rdi\n"
    "    je 25f\n"
    "    cmp $10, %rdi\n"
    "    jb 26f\n"
    "    cmp $14, %rdi\n"
    "    ja 27f\n"
    "25: mov $16, %ecx\n"
    "    jmp 26f\n"
    "27: cmp $17, %rdi\n"
    "    je 25b\n"
    "26: mov (%rsp, %rcx), %rax\n"
    "    call puthex16\n"
    "    mov $10, %al\n"
    "    call putc64\n"
    "    mov $0x7e, %eax\n"
    "    jmp 23b\n"

    /* Idle: halt with interrupts on; the timer handler counts ticks. */
    "idle_loop:\n"
    "    xor %edi, %edi\n"
    "30: sti\n"
    "    hlt\n"
    "    cli\n"
    "    mov ticks, %rax\n"
    "    shr $4, %rax\n"
    "    cmp %rdi, %rax\n"
    "    je 30b\n"
    "    inc %rdi\n"
    "    lea idle_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov %rdi, %rax\n"
    "    call putdec64\n"
    "    mov $10, %al\n"
    "    call putc64\n"
    "    mov iterations, %rax\n"
    "    test %rax, %rax\n"
    "    jz 30b\n"
    "    cmp %rax, %rdi\n"
    "    jb 30b\n"
    "    lea idle_done_text(%rip), %rsi\n"
    "    call puts64\n"
    "    mov $0x20, %eax\n"
    "    jmp 23b\n"
    ".globl timer_handler\n"
    "timer_handler:\n"
    "    push %rax\n"
    "    incq ticks\n"
    "    mov $0xfee000b0, %eax\n"
    "    movl $0, (%rax)\n"
    "    pop %rax\n"
    "    iretq\n"

    /* Output: putc64 (AL), puts64 (RSI, NUL-terminated), puthex16 (RAX as
     * 0x and 16 digits), putdec64 (RAX). Clobber rax, rcx, rdx, rsi. */
    "putc64:\n"
    "    mov $0x3f8, %edx\n"
    "    out %al, %dx\n"
    "    ret\n"
    "puts64:\n"
    "    lodsb\n"
    "    test %al, %al\n"
    "    jz 40f\n"
    "    call putc64\n"
    "    jmp puts64\n"
    "40: ret\n"
    "puthex16:\n"
    "    mov %rax, %rsi\n"
    "    mov $'0', %al\n"
    "    call putc64\n"
    "    mov $'x', %al\n"
    "    call putc64\n"
    "    mov $16, %ecx\n"
    "41: rol $4, %rsi\n"
    "    mov %esi, %eax\n"
    "    and $15, %eax\n"
    "    lea hex_digits(%rip), %rdx\n"
    "    mov (%rdx, %rax), %al\n"
    "    call putc64\n"
    "    dec %ecx\n"
    "    jnz 41b\n"
    "    ret\n"
    "putdec64:\n"
    "    sub $24, %rsp\n"
    "    lea 24(%rsp), %rsi\n"
    "    mov $10, %ecx\n"
    "42: xor %edx, %edx\n"
    "    div %rcx\n"
    "    add $'0', %dl\n"
    "    dec %rsi\n"
    "    mov %dl, (%rsi)\n"
    "    test %rax, %rax\n"
    "    jnz 42b\n"
    "43: mov (%rsi), %al\n"
    "    call putc64\n"
    "    inc %rsi\n"
    "    lea 24(%rsp), %rax\n"
    "    cmp %rax, %rsi\n"
    "    jne 43b\n"
    "    add $24, %rsp\n"
    "    ret\n"

    /* One stub per exception vector: push the vector, go to `fatal`. */
    ".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "exception_\\v:\n"
    "    push $\\v\n"
    "    jmp fatal\n"
    ".endr\n"

    ".section .rodata\n"
    ".globl exception_stubs\n"
    "exception_stubs:\n"
    ".irp v,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n"
    "    .long exception_\\v\n"
    ".endr\n"
    "gdt_pointer: .word 8 * 8 - 1\n"
    "    .long gdt\n"
    "idt_pointer: .word 256 * 16 - 1\n"
    "    .long idt, 0\n"
    "hex_digits: .ascii \"0123456789abcdef\"\n"
    "pass_text: .asciz \"pass \"\n"
    "sum_text: .asciz \" sum \"\n"
    "done_text: .asciz \"dirty: done \"\n"
    "done_sum_text: .asciz \" passes, sum \"\n"
    "errors_text: .asciz \", errors \"\n"
    "exception_text: .asciz \"dirty: exception \"\n"
    "at_text: .asciz \" at \"\n"
    "idle_text: .asciz \"idle \"\n"
    "idle_done_text: .asciz \"dirty: idle done\\n\"\n"
    ".section .bss\n"
    ".balign 8\n"
    "ticks: .quad 0\n"
    "pace_seen: .quad 0\n"
    "pace_credit: .quad 0\n"
    ".previous\n");

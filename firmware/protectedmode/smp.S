/* Brings up the application processors the way a small SMP kernel does, and
 * has every processor report in.
 *
 * The bootstrap processor (entered in 32-bit protected mode at 0x100000)
 * prints "cpu NN bsp" with its own APIC id (CPUID leaf 1 EBX[31:24]), then:
 *  1. finds the Intel MP table (the "_MP_" floating pointer on a 16-byte
 *     boundary in the BIOS area 0xf0000-0xfffff) and walks its processor
 *     entries;
 *  2. copies the real-mode trampoline below to 0x8000 (page-aligned, below
 *     1 MiB: SIPI vector 0x08);
 *  3. for each other processor in the table sends INIT, then SIPI twice,
 *     through its local APIC's ICR (0xfee00310 high, 0xfee00300 low). KVM's
 *     local APIC needs none of the delays hardware asks for between them;
 *  4. waits (bounded) until every application processor has counted itself,
 *     prints "smp: NN cpus" (hex) and exits through the debug-exit port with
 *     the number of processors that came up, itself included.
 *     No MP table: exit status 3.
 *
 * Each application processor starts in real mode at 0x800:0000, reads its
 * APIC id, takes a spin lock (xchg), prints "cpu NN ap", increments the
 * counter (lock inc), releases the lock and halts with interrupts off. The
 * lock serialises the lines on COM1; no processor uses a stack. */
#include "guest.inc"

#define TRAMPOLINE      0x8000          /* SIPI vector 0x08 */
#define SIPI_VECTOR     (TRAMPOLINE >> 12)
#define ICR_LOW         0xfee00300
#define ICR_HIGH        0xfee00310
#define ICR_INIT        0x4500          /* INIT, level assert, physical destination */
#define ICR_SIPI        (0x4600 | SIPI_VECTOR)
#define ICR_PENDING     (1 << 12)       /* delivery status */
#define WAIT_LOOPS      2000000         /* a few seconds where this code is emulated */
#define AP_COUNT        (TRAMPOLINE + (ap_count - trampoline))

/* Print the low byte of %bl as two lower-case hex digits to port %dx
 * (clobbers %al); assembles in 16- and 32-bit code alike. */
.macro PUTHEX_BL
    mov %bl, %al
    shr $4, %al
    add $'0', %al
    cmp $'9', %al
    jbe .Lhi\@
    add $('a' - '9' - 1), %al
.Lhi\@:
    out %al, %dx
    mov %bl, %al
    and $0xf, %al
    add $'0', %al
    cmp $'9', %al
    jbe .Llo\@
    add $('a' - '9' - 1), %al
.Llo\@:
    out %al, %dx
.endm

.macro OUTCHAR c
    mov $\c, %al
    out %al, %dx
.endm

    .code32
    .globl _start
_start:
    /* This processor's line (PUTS32 clobbers %esi, used below). */
    mov $1, %eax
    cpuid
    shr $24, %ebx
    PUTS32 cpu_text
    PUTHEX_BL
    PUTS32 bsp_text

    /* 1. The MP floating pointer. */
    mov $0xf0000, %esi
1:  cmpl $0x5f504d5f, (%esi)            /* "_MP_" */
    je 2f
    add $16, %esi
    cmp $0x100000, %esi
    jb 1b
    EXIT 3
2:  mov 4(%esi), %esi                   /* the configuration table */
    add $44, %esi                       /* its first entry: processors come first */

    /* 2. The trampoline, with its lock and counter at zero. */
    push %esi
    mov $trampoline, %esi
    mov $TRAMPOLINE, %edi
    mov $(trampoline_end - trampoline), %ecx
    rep movsb
    pop %esi

    /* 3. INIT, SIPI, SIPI to each other processor; %ebp counts them all. */
    xor %ebp, %ebp
3:  cmpb $0, (%esi)                     /* entry type 0: a processor */
    jne 5f
    inc %ebp
    testb $2, 3(%esi)                   /* the bootstrap processor: this one */
    jnz 4f
    movzbl 1(%esi), %eax                /* its APIC id */
    shl $24, %eax
    mov %eax, ICR_HIGH
    movl $ICR_INIT, ICR_LOW
    mov %eax, ICR_HIGH
    movl $ICR_SIPI, ICR_LOW
    mov %eax, ICR_HIGH
    movl $ICR_SIPI, ICR_LOW
4:  add $20, %esi
    jmp 3b

    /* 4. Wait for them. */
5:  mov $WAIT_LOOPS, %ecx
6:  mov AP_COUNT, %eax
    inc %eax                            /* and this processor */
    cmp %ebp, %eax
    je 7f
    pause
    dec %ecx
    jnz 6b
7:  mov %eax, %edi
    mov %eax, %ebx
    PUTS32 smp_text
    PUTHEX_BL
    PUTS32 cpus_text
    mov $DEBUG_EXIT, %dx
    mov %edi, %eax
    out %eax, %dx

    DEFINE_PUTS32

cpu_text:  .asciz "cpu "
bsp_text:  .asciz " bsp\n"
smp_text:  .asciz "smp: "
cpus_text: .asciz " cpus\n"

/* Copied to TRAMPOLINE; runs there at CS = 0x800, IP = 0. */
    .code16
trampoline:
    mov %cs, %ax
    mov %ax, %ds                        /* the lock and counter, by offset */
    mov $1, %eax
    cpuid
    shr $24, %ebx
1:  mov $1, %al
    xchg %al, (ap_lock - trampoline)    /* xchg with memory is always locked */
    test %al, %al
    jz 2f
    pause
    jmp 1b
2:  mov $COM1, %dx
    OUTCHAR 'c'
    OUTCHAR 'p'
    OUTCHAR 'u'
    OUTCHAR ' '
    PUTHEX_BL
    OUTCHAR ' '
    OUTCHAR 'a'
    OUTCHAR 'p'
    OUTCHAR '\n'
    lock incl (ap_count - trampoline)
    movb $0, (ap_lock - trampoline)
3:  cli
    hlt
    jmp 3b
    .balign 4
ap_count: .long 0
ap_lock:  .byte 0
trampoline_end:

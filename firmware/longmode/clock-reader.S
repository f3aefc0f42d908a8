/* Reads its clocks twice with a stop in between, for the snapshot tests:
 * a restored guest must find its TSC and kvmclock where they were when it
 * was saved, however long the snapshot sat on disk.
 *
 * Prints "invtsc N\n", N (0 or 1) the invariant-TSC bit of CPUID
 * 0x80000007 EDX (a guest that sees it may keep its time by the TSC alone),
 * enables kvmclock (MSR_KVM_SYSTEM_TIME_NEW, 0x4b564d01) on a page at
 * 0x300000, prints "tsc T kvmclock K\n" (T the TSC, K kvmclock's
 * nanoseconds, both 16 hex digits), writes POST code 1 (the host saves the
 * machine there), prints a second such line and exits with debugExit(0). */
#include "guest.inc"

#define PVCLOCK             0x300000
#define PVCLOCK_VERSION     0       /* u32, odd while KVM updates the page */
#define PVCLOCK_TSC_STAMP   8       /* u64, the TSC at system_time */
#define PVCLOCK_SYSTEM_TIME 16      /* u64, nanoseconds */
#define PVCLOCK_MUL         24      /* u32, ns per TSC tick as a 32.32 fraction */
#define PVCLOCK_SHIFT       28      /* s8, applied to the TSC delta first */

    .code64
    .globl _start
_start:
    PUTS64 invtsc_label
    mov $0x80000007, %eax
    xor %ecx, %ecx
    cpuid
    mov %edx, %eax
    shr $8, %eax
    and $1, %eax
    PUTHEX64 1
    PUTS64 newline
    mov $0x4b564d01, %ecx
    mov $(PVCLOCK | 1), %eax        /* bit 0: enable */
    xor %edx, %edx
    wrmsr
    call report
    mov $1, %al
    out %al, $POST_CODE
    call report
    EXIT 0
    cli
    hlt

/* Prints one "tsc T kvmclock K" line (clobbers most registers). */
report:
    call read_clocks
    mov %rax, %r12                  /* kvmclock */
    mov %r9, %r13                   /* tsc */
    PUTS64 tsc_label
    mov %r13, %rax
    PUTHEX64 16
    PUTS64 kvmclock_label
    mov %r12, %rax
    PUTHEX64 16
    PUTS64 newline
    ret

/* rax = kvmclock in ns, r9 = the TSC it was computed from: the pvclock
 * formula, retried while KVM is updating the page. */
read_clocks:
1:  mov PVCLOCK + PVCLOCK_VERSION, %r8d
    test $1, %r8d
    jnz 1b
    rdtsc
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r9
    sub PVCLOCK + PVCLOCK_TSC_STAMP, %rax
    movsbl PVCLOCK + PVCLOCK_SHIFT, %ecx
    test %ecx, %ecx
    js 2f
    shl %cl, %rax
    jmp 3f
2:  neg %ecx
    shr %cl, %rax
3:  mov PVCLOCK + PVCLOCK_MUL, %r10d
    mul %r10
    shrd $32, %rdx, %rax
    add PVCLOCK + PVCLOCK_SYSTEM_TIME, %rax
    cmp PVCLOCK + PVCLOCK_VERSION, %r8d
    jne 1b
    ret

DEFINE_PUTS64
DEFINE_PUTHEX64

invtsc_label: .asciz "invtsc "
tsc_label: .asciz "tsc "
kvmclock_label: .asciz " kvmclock "
newline: .asciz "\n"

/* A guest that takes long to boot and then serves one request, for the
 * snapshot-fixture tests and the README's fixture example: boot once, save,
 * and give each test a fresh copy that serves its own input.
 *
 * Boot: builds a table of 16384 32-bit entries at 0x200000 (16 pages), each
 * the murmur3 finaliser of the previous entry XOR its index:
 *     t[-1] = 0, t[i] = fmix32(t[i-1] ^ i)
 * About 250,000 instructions: about 0.2 s where KVM emulates ring-0
 * code (PVM), much less on VT-x/AMD-V. Prints `slow-boot: building table\n`
 * before and `slow-boot: ready\n` after, then makes hypercall 0x100 (ready)
 * with RDI = the table's address, RSI = its entry count, RBX = RCX = 0.
 *
 * Serve: the input v is RAX when the hypercall returns (the test's answer to
 * it, or what the test put in RAX after a snapshot taken there). With
 * n = the run counter at 0x210000 plus one and
 *     f(v) = (t[v & 0x3fff] + v) mod 2^32
 * it stores n at 0x210000, v at 0x210008, f(v) at 0x210010 and at
 * 0x220000 + (v & 0xf) * 0x1000 (so inputs dirty different pages), prints
 * `run NN: f(VVVVVVVV) = FFFFFFFF\n` (NN = n, VVVVVVVV the low 32 bits of v,
 * hex), leaves RBX = f(v), R12 = v, and exits with debugExit(0x42). */
#include "guest.inc"
#include "hypercall.inc"

#define TABLE       0x200000
#define ENTRIES     16384
#define RUNS        0x210000
#define LAST_INPUT  0x210008
#define LAST_RESULT 0x210010
#define PER_INPUT   0x220000
#define READY       0x100

    .code64
    .globl _start
_start:
    PUTS64 building

    /* t[i] = fmix32(t[i-1] ^ i), in EAX; EDI walks the table. */
    xor %eax, %eax
    xor %ecx, %ecx
    mov $TABLE, %edi
1:  xor %ecx, %eax
    mov %eax, %edx
    shr $16, %edx
    xor %edx, %eax
    imul $0x85ebca6b, %eax, %eax
    mov %eax, %edx
    shr $13, %edx
    xor %edx, %eax
    imul $0xc2b2ae35, %eax, %eax
    mov %eax, %edx
    shr $16, %edx
    xor %edx, %eax
    mov %eax, (%rdi)
    add $4, %edi
    inc %ecx
    cmp $ENTRIES, %ecx
    jne 1b

    PUTS64 ready
    mov $TABLE, %edi
    mov $ENTRIES, %esi
    xor %ebx, %ebx
    xor %ecx, %ecx
    HYPERCALL READY

    /* The input: the hypercall's answer. */
    mov %rax, %r12
    incq RUNS
    mov %r12, LAST_INPUT
    mov %r12d, %eax
    and $(ENTRIES - 1), %eax
    mov TABLE(,%rax,4), %ebx
    add %r12d, %ebx
    mov %rbx, LAST_RESULT
    mov %r12d, %eax
    and $0xf, %eax
    shl $12, %eax
    mov %rbx, PER_INPUT(%rax)

    PUTS64 run
    mov RUNS, %rax
    PUTHEX64 2
    PUTS64 open
    mov %r12, %rax
    PUTHEX64 8
    PUTS64 equals
    mov %rbx, %rax
    PUTHEX64 8
    PUTS64 newline
    EXIT 0x42
    /* Not reached: the debug-exit write stops the VM. */
    cli
    hlt

DEFINE_PUTS64
DEFINE_PUTHEX64

building: .asciz "slow-boot: building table\n"
ready:    .asciz "slow-boot: ready\n"
run:      .asciz "run "
open:     .asciz ": f("
equals:   .asciz ") = "
newline:  .asciz "\n"

/* Guest memory and registers as the host sees them afterwards, in the style of
 * kvm-hello-world: entered in long mode at 0x100000 with the VMM's identity
 * map, so guest-virtual equals guest-physical.
 *
 * Reads the 64-bit value v the host wrote at 0x200000 before running, writes
 * v * 2 + 1 at 0x200008, fills 0x201000..0x201fff with 0xa5, and stops with
 * RAX = 42 and RBX = v by halting with interrupts off. Prints nothing: the
 * host checks memory and registers instead. Needs at least 0x202000 bytes
 * of RAM. */
#include "guest.inc"

#define INPUT   0x200000
#define OUTPUT  0x200008
#define FILL    0x201000

    .code64
    .globl _start
_start:
    mov INPUT, %rbx
    /* v * 2 + 1 in one instruction; the +1 makes a missing *2 and a
     * missing write (zero) both visible. */
    lea 1(%rbx, %rbx), %rcx
    mov %rcx, OUTPUT

    /* rep stosq moves eight bytes per iteration, so the 4 KiB fill is 512
     * iterations rather than 4096: on a host that emulates ring-0 code every
     * iteration costs. */
    cld
    mov $FILL, %edi
    movabs $0xa5a5a5a5a5a5a5a5, %rax
    mov $(4096 / 8), %ecx
    rep stosq

    mov $42, %eax
    /* With IF clear nothing can wake the CPU: the VMM reports
     * .halted(interruptsEnabled: false) and RIP stays just past the hlt. */
    cli
    hlt

/* InstructionAssist: xsave, xrstor, xsaveopt, xsavec (not emulated by the
 * PVM host in ring 0) through KVM's XSAVE state and the guest's memory.
 * XCR0 = x87|SSE|AVX. Builds image A at 0x200000 (x87 control word 0x027f,
 * MXCSR 0x1fa0, XMMn byte j = n*16+j+1, YMM_Hi128 byte j = j^0xa5 at the
 * offset CPUID.(0xD,2).EBX gives, XSTATE_BV 7), xrstors it and checks:
 *   1  fxsave (which KVM emulates) sees A's FCW, MXCSR and XMM0-15
 *   2  xsave (%rdi) writes A's legacy fields, XMM and YMM bytes, XSTATE_BV 7
 *   3  xsave with EDX:EAX = 3 leaves XSTATE_BV bit 2 and the YMM bytes alone
 *   4  after xrstor of an all-initial image (XSTATE_BV 0), xsaveopt keeps
 *      XSTATE_BV's bits outside RFBM, and fxsave sees FCW 0x037f and zero XMM
 *   5  xsavec: XCOMP_BV 0x8000000000000007, YMM bytes at 576, and xrstor of
 *      that compacted image brings A's XMM back (fxsave)
 *   6  xsave 8 bytes off a 64-byte boundary: #GP(0)
 *   7  xrstor of a standard image with XCOMP_BV 1: #GP(0)
 *   8  xrstor with XSTATE_BV bit 3 (not in XCR0): #GP(0)
 *   9  xsave64 at 0x100000000 (above the VMM's 4 GiB of page tables): #PF,
 *      error code 2 (write, not present), CR2 = 0x100000000
 *  10  xsave with a SIB operand and a RIP-relative one write the same XMM bytes
 * then xrstors A again and ends with debugExit(0), the state A in the vCPU
 * (the test compares KVM's XSAVE state with the image). Any other status is
 * the number of the failed check; 0x7e an unexpected exception. */
#include "guest.inc"

#define AREA_A   0x200000
#define AREA_B   0x201000
#define AREA_C   0x202000
#define AREA_D   0x203000
#define AREA_E   0x204000
#define AREA_Z   0x205000
#define AREA_S   0x206000
#define SEEN     0x20f000   /* vector, error code, CR2 of the last exception */

    .code64
    .globl _start
_start:
    lea stack_top(%rip), %rsp
    /* #UD, #GP, #PF to their stubs, everything else to `unexpected`. */
    lea idt(%rip), %rdi
    xor %ecx, %ecx
1:  lea unexpected(%rip), %rax
    lea ud_stub(%rip), %rdx
    cmp $6, %ecx
    cmove %rdx, %rax
    lea gp_stub(%rip), %rdx
    cmp $13, %ecx
    cmove %rdx, %rax
    lea pf_stub(%rip), %rdx
    cmp $14, %ecx
    cmove %rdx, %rax
    mov %ax, (%rdi)
    movw $0x18, 2(%rdi)
    movw $0x8e00, 4(%rdi)
    shr $16, %rax
    mov %ax, 6(%rdi)
    shr $16, %rax
    mov %eax, 8(%rdi)
    movl $0, 12(%rdi)
    add $16, %rdi
    inc %ecx
    cmp $32, %ecx
    jne 1b
    lidt idt_pointer(%rip)

    mov %cr4, %rax
    or $(1 << 18), %rax
    mov %rax, %cr4
    mov $7, %eax
    xor %edx, %edx
    xor %ecx, %ecx
    xsetbv
    mov $0xd, %eax
    mov $2, %ecx
    cpuid
    mov %rbx, ymm_offset(%rip)

    /* Image A. */
    mov $AREA_A, %rdi
    call clear_area
    movw $0x027f, (%rdi)
    movl $0x1fa0, 24(%rdi)
    xor %ecx, %ecx
1:  lea 1(%rcx), %eax
    mov %al, 160(%rdi,%rcx)
    mov ymm_offset(%rip), %rdx
    add %rdi, %rdx
    mov %ecx, %eax
    xor $0xa5, %al
    mov %al, (%rdx,%rcx)
    inc %ecx
    cmp $256, %ecx
    jne 1b
    movq $7, 512(%rdi)
    /* The all-initial image Z: MXCSR 0x1f80, XSTATE_BV 0. */
    mov $AREA_Z, %rdi
    call clear_area
    movl $0x1f80, 24(%rdi)

    /* 1: xrstor A; fxsave sees it. */
    mov $-1, %eax
    mov $-1, %edx
    mov $AREA_A, %rdi
    xrstor64 (%rdi)
    mov $AREA_E, %rdi
    call clear_area
    fxsave64 (%rdi)
    cmpw $0x027f, AREA_E
    jne fail1
    cmpl $0x1fa0, AREA_E + 24
    jne fail1
    mov $(AREA_A + 160), %rsi
    mov $(AREA_E + 160), %rdi
    mov $256, %ecx
    call compare
    jne fail1

    /* 2: xsave writes the same image. */
    mov $AREA_B, %rdi
    call clear_area
    movq $0x100, 512(%rdi)          /* a bit outside RFBM stays */
    mov $-1, %eax
    mov $-1, %edx
    xsave64 (%rdi)
    cmpw $0x027f, AREA_B
    jne fail2
    cmpl $0x1fa0, AREA_B + 24
    jne fail2
    cmpq $0x107, AREA_B + 512
    jne fail2
    mov $(AREA_A + 160), %rsi
    mov $(AREA_B + 160), %rdi
    mov $256, %ecx
    call compare
    jne fail2
    mov ymm_offset(%rip), %rsi
    lea AREA_A(%rsi), %rdi
    lea AREA_B(%rsi), %rsi
    mov $256, %ecx
    call compare
    jne fail2

    /* 3: RFBM 3 leaves the YMM part and XSTATE_BV bit 2 as they were. */
    mov $AREA_C, %rdi
    call clear_area
    movq $4, 512(%rdi)
    mov ymm_offset(%rip), %rsi
    movl $0xeeeeeeee, AREA_C(%rsi)
    mov $3, %eax
    xor %edx, %edx
    xsave64 (%rdi)
    cmpq $7, AREA_C + 512
    jne fail3
    cmpl $0xeeeeeeee, AREA_C(%rsi)
    jne fail3
    cmpl $0x04030201, AREA_C + 160
    jne fail3

    /* 4: the initial image, then xsaveopt. */
    mov $-1, %eax
    mov $-1, %edx
    mov $AREA_Z, %rdi
    xrstor64 (%rdi)
    mov $AREA_C, %rdi
    call clear_area
    movq $0x100, 512(%rdi)
    mov $-1, %eax
    mov $-1, %edx
    xsaveopt64 (%rdi)
    /* The CPU may report an initial component as in use (this host's does
     * for SSE): only the bits outside RFBM are certain. */
    mov AREA_C + 512, %rax
    and $~7, %rax
    cmp $0x100, %rax
    jne fail4
    mov $AREA_E, %rdi
    call clear_area
    fxsave64 (%rdi)
    cmpw $0x037f, AREA_E
    jne fail4
    mov $(AREA_Z + 160), %rsi
    mov $(AREA_E + 160), %rdi
    mov $256, %ecx
    call compare
    jne fail4

    /* 5: A again, xsavec, and back from the compacted image. */
    mov $-1, %eax
    mov $-1, %edx
    mov $AREA_A, %rdi
    xrstor64 (%rdi)
    mov $AREA_D, %rdi
    call clear_area
    mov $-1, %eax
    xsavec64 (%rdi)
    mov AREA_D + 520, %rax
    mov $0x8000000000000007, %rbx
    cmp %rbx, %rax
    jne fail5
    cmpq $7, AREA_D + 512
    jne fail5
    mov $(AREA_D + 576), %rsi
    mov ymm_offset(%rip), %rdi
    add $AREA_A, %rdi
    mov $256, %ecx
    call compare
    jne fail5
    mov $-1, %eax
    mov $AREA_Z, %rdi
    xrstor64 (%rdi)
    mov $AREA_D, %rdi
    xrstor64 (%rdi)
    mov $AREA_E, %rdi
    call clear_area
    fxsave64 (%rdi)
    mov $(AREA_A + 160), %rsi
    mov $(AREA_E + 160), %rdi
    mov $256, %ecx
    call compare
    jne fail5

    /* 6: misaligned: #GP(0). */
    lea after6(%rip), %rax
    mov %rax, resume(%rip)
    mov $(AREA_C + 8), %rdi
    xsave64 (%rdi)
    EXIT 6
after6:
    cmpq $13, SEEN
    jne fail6
    cmpq $0, SEEN + 8
    jne fail6

    /* 7: XCOMP_BV 1 in a standard image: #GP(0). */
    mov $AREA_C, %rdi
    call clear_area
    movl $0x1f80, 24(%rdi)
    movq $1, 520(%rdi)
    lea after7(%rip), %rax
    mov %rax, resume(%rip)
    xrstor64 (%rdi)
    EXIT 7
after7:
    cmpq $13, SEEN
    jne fail7

    /* 8: XSTATE_BV bit 3, not in XCR0: #GP(0). */
    movq $0, AREA_C + 520
    movq $8, AREA_C + 512
    lea after8(%rip), %rax
    mov %rax, resume(%rip)
    mov $AREA_C, %rdi
    xrstor64 (%rdi)
    EXIT 8
after8:
    cmpq $13, SEEN
    jne fail8

    /* 9: above the mapped 4 GiB: #PF, write, not present, CR2 set. */
    lea after9(%rip), %rax
    mov %rax, resume(%rip)
    mov $0x100000000, %rdi
    xsave64 (%rdi)
    EXIT 9
after9:
    cmpq $14, SEEN
    jne fail9
    cmpq $2, SEEN + 8
    jne fail9
    mov $0x100000000, %rax
    cmp %rax, SEEN + 16
    jne fail9

    /* 10: a SIB operand (base, index*8, disp32) and a RIP-relative one. */
    mov $-1, %eax
    mov $-1, %edx
    mov $AREA_A, %rdi
    xrstor64 (%rdi)
    mov $AREA_S, %rdi
    call clear_area
    mov $(AREA_S - 0x1000 - 8 * 8), %rbx
    mov $8, %rcx
    mov $-1, %eax
    xsave64 0x1000(%rbx,%rcx,8)
    mov $(AREA_A + 160), %rsi
    mov $(AREA_S + 160), %rdi
    mov $256, %ecx
    call compare
    jne fail10
    mov $-1, %eax
    xsave rip_area(%rip)
    lea rip_area + 160(%rip), %rdi
    mov $(AREA_A + 160), %rsi
    mov $256, %ecx
    call compare
    jne fail10

    mov $-1, %eax
    mov $-1, %edx
    mov $AREA_A, %rdi
    xrstor64 (%rdi)
    EXIT 0

/* Zero 4 KiB at rdi (keeps rdi). */
clear_area:
    push %rdi
    xor %eax, %eax
    mov $512, %ecx
1:  mov %rax, (%rdi)
    add $8, %rdi
    dec %ecx
    jnz 1b
    pop %rdi
    ret

/* ZF set if rcx bytes at rsi and rdi are equal. */
compare:
    mov (%rsi), %al
    cmp %al, (%rdi)
    jne 1f
    inc %rsi
    inc %rdi
    dec %rcx
    jnz compare
1:  ret

/* #UD, #GP, #PF: record vector, error code (0 for #UD) and CR2, then go on
 * at `resume` on a fresh stack (no iretq needed). */
ud_stub:
    push $0
    push $6
    jmp fault
gp_stub:
    push $13
    jmp fault
pf_stub:
    push $14
fault:
    pop %rax
    mov %rax, SEEN
    pop %rax
    mov %rax, SEEN + 8
    mov %cr2, %rax
    mov %rax, SEEN + 16
    lea stack_top(%rip), %rsp
    jmp *resume(%rip)
unexpected:
    EXIT 0x7e

fail1: EXIT 1
fail2: EXIT 2
fail3: EXIT 3
fail4: EXIT 4
fail5: EXIT 5
fail6: EXIT 6
fail7: EXIT 7
fail8: EXIT 8
fail9: EXIT 9
fail10: EXIT 10

    .balign 8
ymm_offset: .quad 0
resume: .quad 0
    .balign 16
idt:
    .fill 64, 8, 0
idt_end:
idt_pointer:
    .word idt_end - idt - 1
    .quad idt
    .balign 64
rip_area:
    .fill 1024, 1, 0
    .balign 16
    .fill 1024, 1, 0
stack_top:

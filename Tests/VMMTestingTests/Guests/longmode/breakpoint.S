/* For breakpoint and single-step tests: sets RAX = 0x1234, then at the fixed
 * address 0x100040 (`target`) executes `add $1, %rax` (4 bytes: 48 83 c0 01),
 * `mov %rax, %rbx` (3 bytes), and then writes to a null pointer's page far
 * beyond RAM... no: it executes `ud2`, which faults with no IDT, so the test
 * can find the faulting instruction with breakpoints. */
    .code64
    .globl _start
_start:
    mov $0x1234, %eax
    jmp target
    .org 0x40
target:
    add $1, %rax
    mov %rax, %rbx
    ud2

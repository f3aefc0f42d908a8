/* Talks to its test through hypercalls: progress 1, a log line, a request
 * (0x100: add two numbers) whose answer it checks, progress 2, done 0. */
#include "hypercall.inc"
    .code64
    .globl _start
_start:
    HC_PROGRESS 1
    HC_LOG message, message_end - message
    mov $20, %edi
    mov $22, %esi
    HYPERCALL HYPERCALL_USER
    mov %eax, %ecx
    HC_EXPECT_EQ(%ecx, 42)
    HC_PROGRESS 2
    HC_DONE 0
    hlt
message: .ascii "hello from the guest"
message_end:

/* A freestanding C guest using swiftvmm_hypercall.h: asks its test for the
 * n-th Fibonacci number (service 0x101) for n = 1..10, checks each against its
 * own, logs, and reports done with the number of mismatches. */
#include "swiftvmm_hypercall.h"

static unsigned long fibonacci(unsigned long n) {
    unsigned long a = 0, b = 1;
    for (unsigned long i = 0; i < n; i++) {
        unsigned long next = a + b;
        a = b;
        b = next;
    }
    return a;
}

__attribute__((section(".text.start"), noreturn)) void _start(void) {
    unsigned long mismatches = 0;
    swiftvmm_log("fibonacci from C");
    for (unsigned long n = 1; n <= 10; n++) {
        unsigned long answer = swiftvmm_hypercall(SWIFTVMM_HC_USER + 1, n, 0, 0, 0);
        SWIFTVMM_EXPECT_EQ(answer, fibonacci(n));
        if (answer != fibonacci(n)) mismatches++;
    }
    swiftvmm_done(mismatches);
    for (;;) __asm__ volatile("cli; hlt");
}

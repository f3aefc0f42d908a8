/* A freestanding C guest using swiftvmm's hypercall header: asks the test
 * for two numbers, checks their sum and reports done. */
#include "swiftvmm_hypercall.h"

void __attribute__((section(".text.start"))) _start(void) {
    swiftvmm_word a = swiftvmm_hypercall(SWIFTVMM_HC_USER, 0, 0, 0, 0);
    swiftvmm_word b = swiftvmm_hypercall(SWIFTVMM_HC_USER, 1, 0, 0, 0);
    SWIFTVMM_ASSERT_EQ(a + b, 42, "the sum of the test's numbers");
    swiftvmm_done(0);
    for (;;) __asm__ volatile("hlt");
}

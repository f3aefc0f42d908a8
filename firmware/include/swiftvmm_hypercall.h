/* swiftvmm hypercalls for freestanding C guests (see
 * Sources/VMMTesting/Hypercall.swift for the convention). 32- and 64-bit. */
#ifndef SWIFTVMM_HYPERCALL_H
#define SWIFTVMM_HYPERCALL_H

#define SWIFTVMM_HYPERCALL_PORT 0x5f0

enum swiftvmm_hypercall {
    SWIFTVMM_HC_DONE = 0,
    SWIFTVMM_HC_PROGRESS = 1,
    SWIFTVMM_HC_ASSERT_FAILED = 2,
    SWIFTVMM_HC_LOG = 3,
    SWIFTVMM_HC_SYNC = 4,
    SWIFTVMM_HC_USER = 0x100,
};

#if defined(__x86_64__)
typedef unsigned long swiftvmm_word;
#else
typedef unsigned int swiftvmm_word;
#endif

/* Makes hypercall `number` with up to four arguments; returns the test's answer. */
static inline swiftvmm_word swiftvmm_hypercall(unsigned int number, swiftvmm_word a0, swiftvmm_word a1,
                                               swiftvmm_word a2, swiftvmm_word a3) {
    swiftvmm_word result;
    __asm__ volatile("outl %%eax, %%dx"
                     : "=a"(result)
                     : "a"(number), "d"(SWIFTVMM_HYPERCALL_PORT), "D"(a0), "S"(a1), "b"(a2), "c"(a3)
                     : "memory");
    return result;
}

static inline void swiftvmm_done(swiftvmm_word status) { swiftvmm_hypercall(SWIFTVMM_HC_DONE, status, 0, 0, 0); }
static inline void swiftvmm_progress(swiftvmm_word value) { swiftvmm_hypercall(SWIFTVMM_HC_PROGRESS, value, 0, 0, 0); }

/* Tells the test the guest reached `stage` (`vm.awaitSync(stage)`); returns its answer. */
static inline swiftvmm_word swiftvmm_sync(swiftvmm_word stage) { return swiftvmm_hypercall(SWIFTVMM_HC_SYNC, stage, 0, 0, 0); }
#define GUEST_SYNC(stage) swiftvmm_sync(stage)

static inline void swiftvmm_log(const char *text) {
    swiftvmm_word length = 0;
    while (text[length]) length++;
    swiftvmm_hypercall(SWIFTVMM_HC_LOG, (swiftvmm_word)text, length, 0, 0);
}

/* Reports a failed check with its file, line, the expected and the actual
 * value, and `message` (a string literal): the file name and message go to
 * the test as two NUL-terminated strings at the address in the 4th argument. */
#define SWIFTVMM_ASSERT_EQ(actual, expected, message)                                                         \
    do {                                                                                                      \
        static const char swiftvmm_where[] = __FILE__ "\0" message;                                           \
        swiftvmm_word swiftvmm_a = (swiftvmm_word)(actual), swiftvmm_e = (swiftvmm_word)(expected);           \
        if (swiftvmm_a != swiftvmm_e)                                                                         \
            swiftvmm_hypercall(SWIFTVMM_HC_ASSERT_FAILED, __LINE__, swiftvmm_e, swiftvmm_a, (swiftvmm_word)swiftvmm_where); \
    } while (0)

/* SWIFTVMM_ASSERT_EQ with no message. */
#define SWIFTVMM_EXPECT_EQ(actual, expected) SWIFTVMM_ASSERT_EQ(actual, expected, "")

#endif

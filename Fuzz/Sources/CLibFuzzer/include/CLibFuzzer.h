// libFuzzer's driver, for a program that has its own main
// (https://llvm.org/docs/LibFuzzer.html#using-libfuzzer-as-a-library).
#ifndef SWIFTVMM_CLIBFUZZER_H
#define SWIFTVMM_CLIBFUZZER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif

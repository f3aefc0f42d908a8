// The reference point for swiftvmm's exit-loop benchmark: the least a VMM can
// do per port-I/O exit, written in C the way kvm-hello-world does it.
#ifndef CKVM_BASELINE_H
#define CKVM_BASELINE_H

#include <stddef.h>
#include <stdint.h>

/// Runs `code` in a fresh real-mode VM (loaded and entered at 0x7c00, ECX =
/// `iterations`) with a bare KVM_RUN loop that ignores every OUT except one to
/// port 0xf4, which ends the run. Returns the number of exits seen, or -errno.
/// `*nanoseconds` receives the time spent in the loop alone.
long ckvm_baseline_out_loop(const uint8_t *code, size_t length, uint32_t iterations, uint64_t *nanoseconds);

#endif

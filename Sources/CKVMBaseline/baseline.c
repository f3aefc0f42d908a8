#include "CKVMBaseline.h"
#include <CKVM.h>

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

long ckvm_baseline_out_loop(const uint8_t *code, size_t length, uint32_t iterations, uint64_t *nanoseconds) {
    const size_t ram_size = 1 << 20;
    long result = -1;
    int kvm = -1, vm = -1, vcpu = -1;
    void *ram = MAP_FAILED, *run_page = MAP_FAILED;
    int run_size = 0;

    if (length > ram_size - 0x7c00) return -EINVAL;
    if ((kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) return -errno;
    if ((vm = ckvm_create_vm(kvm, 0)) < 0) { result = vm; goto out; }
    ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) { result = -errno; goto out; }
    memcpy((uint8_t *)ram + 0x7c00, code, length);
    struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = ram_size, .userspace_addr = (uint64_t)(uintptr_t)ram};
    if ((result = ckvm_set_user_memory_region(vm, &region)) < 0) goto out;
    if ((vcpu = ckvm_create_vcpu(vm, 0)) < 0) { result = vcpu; goto out; }
    if ((run_size = ckvm_get_vcpu_mmap_size(kvm)) < 0) { result = run_size; goto out; }
    run_page = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run_page == MAP_FAILED) { result = -errno; goto out; }

    struct kvm_sregs sregs;
    if ((result = ckvm_get_sregs(vcpu, &sregs)) < 0) goto out;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if ((result = ckvm_set_sregs(vcpu, &sregs)) < 0) goto out;
    struct kvm_regs regs = {.rip = 0x7c00, .rsp = 0x7c00, .rflags = 2, .rcx = iterations};
    if ((result = ckvm_set_regs(vcpu, &regs)) < 0) goto out;

    struct kvm_run *run = run_page;
    long exits = 0;
    uint64_t start = now_ns();
    for (;;) {
        int r = ckvm_run(vcpu);
        if (r < 0) { result = r; goto out; }
        exits++;
        if (run->exit_reason != KVM_EXIT_IO) break;
        if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xf4) break;
    }
    *nanoseconds = now_ns() - start;
    result = exits;
out:
    if (run_page != MAP_FAILED) munmap(run_page, (size_t)run_size);
    if (vcpu >= 0) close(vcpu);
    if (vm >= 0) close(vm);
    if (ram != MAP_FAILED) munmap(ram, ram_size);
    close(kvm);
    return result;
}

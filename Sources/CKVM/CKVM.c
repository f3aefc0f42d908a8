// SwiftPM needs one source file per C target; the forwarders are all
// static inline in include/CKVM.h.
#include "CKVM.h"

// The request numbers by the fd they go to, for the seccomp filters (the
// Sandbox module allows a thread only the requests its job needs).
static const unsigned long system_requests[] = {
    KVM_GET_API_VERSION, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, KVM_CREATE_VM, KVM_GET_SUPPORTED_CPUID,
    KVM_GET_MSR_INDEX_LIST,
};
static const unsigned long vm_setup_requests[] = {
    KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU, KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2, KVM_SET_GSI_ROUTING, KVM_IOEVENTFD, KVM_IRQFD, KVM_ENABLE_CAP,
};
static const unsigned long vm_runtime_requests[] = {
    KVM_CHECK_EXTENSION, KVM_IRQ_LINE, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2, KVM_GET_CLOCK,
    KVM_SET_CLOCK, KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG,
};
static const unsigned long vcpu_requests[] = {
    KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU, KVM_SET_FPU, KVM_GET_MSRS,
    KVM_SET_MSRS, KVM_SET_CPUID2, KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
    KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_INTERRUPT, KVM_NMI, KVM_GET_XSAVE, KVM_GET_XSAVE2, KVM_SET_XSAVE,
    KVM_GET_XCRS, KVM_SET_XCRS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ,
    KVM_SET_GUEST_DEBUG, KVM_TRANSLATE,
};

#define CKVM_LIST(array) do { *requests = array; return sizeof array / sizeof array[0]; } while (0)

unsigned long ckvm_requests(enum ckvm_request_group group, const unsigned long **requests) {
    switch (group) {
    case CKVM_SYSTEM_REQUESTS: CKVM_LIST(system_requests);
    case CKVM_VM_SETUP_REQUESTS: CKVM_LIST(vm_setup_requests);
    case CKVM_VM_RUNTIME_REQUESTS: CKVM_LIST(vm_runtime_requests);
    case CKVM_VCPU_REQUESTS: CKVM_LIST(vcpu_requests);
    }
    *requests = 0;
    return 0;
}

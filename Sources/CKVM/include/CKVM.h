// The only file in swiftvmm that includes <linux/kvm.h>.
//
// Swift cannot import the KVM_* request numbers (they are function-like _IOW
// macros), so each ioctl gets one static inline forwarder here. Every function
// returns the ioctl's result, or -errno on failure, read in the same expression
// so that nothing can clobber errno in between. No policy, allocation or
// logging lives here: the Swift `KVM` module decides what a result means.
#ifndef CKVM_H
#define CKVM_H

#include <errno.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#define CKVM_FORWARD(expr) do { int ckvm_r = (expr); return ckvm_r < 0 ? -errno : ckvm_r; } while (0)

// MARK: /dev/kvm (system) ioctls

static inline int ckvm_get_api_version(int kvm_fd) { CKVM_FORWARD(ioctl(kvm_fd, KVM_GET_API_VERSION, 0)); }
static inline int ckvm_check_extension(int fd, long capability) { CKVM_FORWARD(ioctl(fd, KVM_CHECK_EXTENSION, capability)); }
static inline int ckvm_get_vcpu_mmap_size(int kvm_fd) { CKVM_FORWARD(ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0)); }
static inline int ckvm_create_vm(int kvm_fd, unsigned long type) { CKVM_FORWARD(ioctl(kvm_fd, KVM_CREATE_VM, type)); }
static inline int ckvm_get_supported_cpuid(int kvm_fd, struct kvm_cpuid2 *cpuid) { CKVM_FORWARD(ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid)); }
static inline int ckvm_get_msr_index_list(int kvm_fd, struct kvm_msr_list *list) { CKVM_FORWARD(ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, list)); }

// MARK: VM ioctls

static inline int ckvm_set_user_memory_region(int vm_fd, const struct kvm_userspace_memory_region *region) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, region)); }
static inline int ckvm_create_vcpu(int vm_fd, unsigned long id) { CKVM_FORWARD(ioctl(vm_fd, KVM_CREATE_VCPU, id)); }
static inline int ckvm_set_tss_addr(int vm_fd, unsigned long address) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_TSS_ADDR, address)); }
static inline int ckvm_set_identity_map_addr(int vm_fd, const __u64 *address) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, address)); }
static inline int ckvm_create_irqchip(int vm_fd) { CKVM_FORWARD(ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0)); }
static inline int ckvm_create_pit2(int vm_fd, const struct kvm_pit_config *config) { CKVM_FORWARD(ioctl(vm_fd, KVM_CREATE_PIT2, config)); }
static inline int ckvm_irq_line(int vm_fd, const struct kvm_irq_level *level) { CKVM_FORWARD(ioctl(vm_fd, KVM_IRQ_LINE, level)); }
static inline int ckvm_set_gsi_routing(int vm_fd, const struct kvm_irq_routing *routing) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_GSI_ROUTING, routing)); }
static inline int ckvm_get_irqchip(int vm_fd, struct kvm_irqchip *chip) { CKVM_FORWARD(ioctl(vm_fd, KVM_GET_IRQCHIP, chip)); }
static inline int ckvm_set_irqchip(int vm_fd, const struct kvm_irqchip *chip) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_IRQCHIP, chip)); }
static inline int ckvm_get_pit2(int vm_fd, struct kvm_pit_state2 *state) { CKVM_FORWARD(ioctl(vm_fd, KVM_GET_PIT2, state)); }
static inline int ckvm_set_pit2(int vm_fd, const struct kvm_pit_state2 *state) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_PIT2, state)); }
static inline int ckvm_get_clock(int vm_fd, struct kvm_clock_data *clock) { CKVM_FORWARD(ioctl(vm_fd, KVM_GET_CLOCK, clock)); }
static inline int ckvm_set_clock(int vm_fd, const struct kvm_clock_data *clock) { CKVM_FORWARD(ioctl(vm_fd, KVM_SET_CLOCK, clock)); }
static inline int ckvm_get_dirty_log(int vm_fd, const struct kvm_dirty_log *log) { CKVM_FORWARD(ioctl(vm_fd, KVM_GET_DIRTY_LOG, log)); }
static inline int ckvm_clear_dirty_log(int vm_fd, const struct kvm_clear_dirty_log *log) { CKVM_FORWARD(ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, log)); }
static inline int ckvm_ioeventfd(int vm_fd, const struct kvm_ioeventfd *event) { CKVM_FORWARD(ioctl(vm_fd, KVM_IOEVENTFD, event)); }
static inline int ckvm_irqfd(int vm_fd, const struct kvm_irqfd *irqfd) { CKVM_FORWARD(ioctl(vm_fd, KVM_IRQFD, irqfd)); }
// KVM_ENABLE_CAP on the VM fd (VM-wide capabilities such as KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2).
static inline int ckvm_enable_cap(int fd, const struct kvm_enable_cap *cap) { CKVM_FORWARD(ioctl(fd, KVM_ENABLE_CAP, cap)); }

// MARK: vCPU ioctls

static inline int ckvm_run(int vcpu_fd) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_RUN, 0)); }
static inline int ckvm_get_regs(int vcpu_fd, struct kvm_regs *regs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_REGS, regs)); }
static inline int ckvm_set_regs(int vcpu_fd, const struct kvm_regs *regs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_REGS, regs)); }
static inline int ckvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_SREGS, sregs)); }
static inline int ckvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_SREGS, sregs)); }
static inline int ckvm_get_fpu(int vcpu_fd, struct kvm_fpu *fpu) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_FPU, fpu)); }
static inline int ckvm_set_fpu(int vcpu_fd, const struct kvm_fpu *fpu) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_FPU, fpu)); }
static inline int ckvm_get_msrs(int vcpu_fd, struct kvm_msrs *msrs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_MSRS, msrs)); }
static inline int ckvm_set_msrs(int vcpu_fd, const struct kvm_msrs *msrs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_MSRS, msrs)); }
static inline int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid2 *cpuid) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_CPUID2, cpuid)); }
static inline int ckvm_get_lapic(int vcpu_fd, struct kvm_lapic_state *lapic) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_LAPIC, lapic)); }
static inline int ckvm_set_lapic(int vcpu_fd, const struct kvm_lapic_state *lapic) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_LAPIC, lapic)); }
static inline int ckvm_get_mp_state(int vcpu_fd, struct kvm_mp_state *state) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_MP_STATE, state)); }
static inline int ckvm_set_mp_state(int vcpu_fd, const struct kvm_mp_state *state) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_MP_STATE, state)); }
static inline int ckvm_get_vcpu_events(int vcpu_fd, struct kvm_vcpu_events *events) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, events)); }
static inline int ckvm_set_vcpu_events(int vcpu_fd, const struct kvm_vcpu_events *events) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, events)); }
static inline int ckvm_interrupt(int vcpu_fd, const struct kvm_interrupt *interrupt) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_INTERRUPT, interrupt)); }
static inline int ckvm_nmi(int vcpu_fd) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_NMI, 0)); }
static inline int ckvm_get_xsave(int vcpu_fd, struct kvm_xsave *xsave) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_XSAVE, xsave)); }
// `xsave` must have room for KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes (asked of the VM fd).
static inline int ckvm_get_xsave2(int vcpu_fd, struct kvm_xsave *xsave) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_XSAVE2, xsave)); }
// KVM reads as many bytes as KVM_GET_XSAVE2 writes.
static inline int ckvm_set_xsave(int vcpu_fd, const struct kvm_xsave *xsave) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_XSAVE, xsave)); }
static inline int ckvm_get_xcrs(int vcpu_fd, struct kvm_xcrs *xcrs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_XCRS, xcrs)); }
static inline int ckvm_set_xcrs(int vcpu_fd, const struct kvm_xcrs *xcrs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_XCRS, xcrs)); }
static inline int ckvm_get_debugregs(int vcpu_fd, struct kvm_debugregs *regs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_DEBUGREGS, regs)); }
static inline int ckvm_set_debugregs(int vcpu_fd, const struct kvm_debugregs *regs) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_DEBUGREGS, regs)); }
// Returns the guest TSC frequency in kHz.
static inline int ckvm_get_tsc_khz(int vcpu_fd) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0)); }
static inline int ckvm_set_tsc_khz(int vcpu_fd, unsigned long khz) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_TSC_KHZ, khz)); }
static inline int ckvm_set_guest_debug(int vcpu_fd, const struct kvm_guest_debug *debug) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_SET_GUEST_DEBUG, debug)); }
static inline int ckvm_translate(int vcpu_fd, struct kvm_translation *translation) { CKVM_FORWARD(ioctl(vcpu_fd, KVM_TRANSLATE, translation)); }

// MARK: kvm_run fields another thread writes

// `immediate_exit` is written by a thread that wants the vCPU out of KVM_RUN
// while the vCPU thread reads and clears it; an atomic byte store keeps that
// well-defined (and quiet under ThreadSanitizer).
static inline void ckvm_store_immediate_exit(struct kvm_run *run, __u8 value) { __atomic_store_n(&run->immediate_exit, value, __ATOMIC_SEQ_CST); }

// MARK: request numbers, for the seccomp filters

/// Which ioctls `ckvm_requests` lists.
enum ckvm_request_group {
    CKVM_SYSTEM_REQUESTS,      ///< /dev/kvm's
    CKVM_VM_SETUP_REQUESTS,    ///< the VM fd's, made while a machine is built
    CKVM_VM_RUNTIME_REQUESTS,  ///< the VM fd's, made while it runs (interrupts, state, dirty log)
    CKVM_VCPU_REQUESTS,        ///< the vCPU fds'
};

/// Points `*requests` at the request numbers of `group` and returns how many there are.
unsigned long ckvm_requests(enum ckvm_request_group group, const unsigned long **requests);

#endif

/* Interrupts for the 32-bit ring-0 C guests, without `iret`.
 *
 * Some hosts this project runs on do not emulate `iret` in 32-bit ring 0, so
 * an interrupt handler here never returns through its frame: interrupts are
 * enabled only inside irq_wait (`sti; hlt`), and every handler sends the LAPIC
 * its EOI, drops the frame by reloading the stack pointer irq_wait saved and
 * returns from irq_wait with the vector. Elsewhere IF stays 0, so an interrupt
 * that comes early waits in the LAPIC's IRR for the next irq_wait.
 *
 * Routing: both PICs masked, the local APIC enabled, IOAPIC pin `gsi` to
 * vector IRQ_VECTOR_BASE + gsi (fixed, physical, APIC 0, edge, active high:
 * the contract for swiftvmm's virtio-mmio lines). A one-shot LAPIC timer
 * bounds every wait, so a lost interrupt is reported, not a hang.
 * Exceptions print their vector and end the guest with status 0x7e. */
#ifndef SWIFTVMM_GUEST_IRQ_H
#define SWIFTVMM_GUEST_IRQ_H

#include "virtio_mmio.h"

#define IOAPIC_SELECT 0xfec00000u
#define IOAPIC_WINDOW 0xfec00010u
#define LAPIC_TPR 0xfee00080u
#define LAPIC_EOI 0xfee000b0u
#define LAPIC_SVR 0xfee000f0u
#define LAPIC_LVT_TIMER 0xfee00320u
#define LAPIC_TIMER_INITIAL 0xfee00380u
#define LAPIC_TIMER_DIVIDE 0xfee003e0u

#define IRQ_VECTOR_BASE 0x30
#define IRQ_TIMER_VECTOR 0x60

struct idt_gate {
    u16 offset_low;
    u16 selector;
    u16 type;
    u16 offset_high;
};
static struct idt_gate irq_idt[256] __attribute__((aligned(8), unused));
/* The stack pointer irq_wait left, which a handler returns to. */
u32 irq_resume_esp;
/* Interrupts taken from devices (the watchdog's not counted). */
static u32 irq_device_count __attribute__((unused));

void irq_exception(u32 vector);
void irq_exception(u32 vector) {
    puts("exception: vector ");
    putdec(vector);
    puts("\n");
    exit_with(0x7e);
}

/* One 16-byte stub per vector (push the vector, go to the common part); the
 * common part EOIs, unwinds to irq_wait's caller and returns the vector.
 * Exceptions go to irq_exception instead. */
__asm__(".text\n"
        ".balign 16\n"
        "irq_stubs:\n"
        ".set irq_vector, 0\n"
        ".rept 256\n"
        "    .balign 16\n"
        "    pushl $irq_vector\n"
        "    jmp irq_common\n"
        "    .set irq_vector, irq_vector + 1\n"
        ".endr\n"
        "irq_common:\n"
        "    pop %eax\n"
        "    cmp $32, %eax\n"
        "    jae 1f\n"
        "    push %eax\n"
        "    call irq_exception\n"
        "1:  cmp $0xff, %eax\n"      /* the spurious vector takes no EOI */
        "    je 2f\n"
        "    movl $0, 0xfee000b0\n"
        "2:  mov irq_resume_esp, %esp\n"
        "    pop %ebp\n"
        "    pop %edi\n"
        "    pop %esi\n"
        "    pop %ebx\n"
        "    ret\n"
        /* u32 irq_wait(void): enables interrupts and halts until one arrives; returns its vector. */
        ".globl irq_wait\n"
        "irq_wait:\n"
        "    push %ebx\n"
        "    push %esi\n"
        "    push %edi\n"
        "    push %ebp\n"
        "    mov %esp, irq_resume_esp\n"
        "3:  sti\n"
        "    hlt\n"
        "    cli\n"
        "    jmp 3b\n");
extern const u8 irq_stubs[];
u32 irq_wait(void);

static inline void ioapic_write(u32 index, u32 value) {
    mmio_write32(IOAPIC_SELECT, index);
    mmio_write32(IOAPIC_WINDOW, value);
}

/* The IDT, the LAPIC, and IOAPIC pin `gsi` unmasked (edge, active high). */
static inline void irq_setup(u32 gsi) {
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (u32 v = 0; v < 256; v++) {
        u32 handler = (u32)(uptr)(irq_stubs + 16 * v);
        irq_idt[v].offset_low = (u16)handler;
        irq_idt[v].selector = cs;
        irq_idt[v].type = 0x8e00; /* present, DPL 0, 32-bit interrupt gate */
        irq_idt[v].offset_high = (u16)(handler >> 16);
    }
    struct __attribute__((packed)) {
        u16 limit;
        u32 base;
    } pointer = {sizeof irq_idt - 1, (u32)(uptr)irq_idt};
    __asm__ volatile("lidt %0" : : "m"(pointer));
    outb(0x21, 0xff); /* mask every PIC line */
    outb(0xa1, 0xff);
    mmio_write32(LAPIC_SVR, 0x1ff); /* software-enabled, spurious vector 0xff */
    mmio_write32(LAPIC_TPR, 0);
    mmio_write32(LAPIC_TIMER_DIVIDE, 3); /* divide by 16 */
    mmio_write32(LAPIC_LVT_TIMER, IRQ_TIMER_VECTOR); /* one-shot */
    ioapic_write(0x11 + 2 * gsi, 0);                 /* destination APIC 0 */
    ioapic_write(0x10 + 2 * gsi, IRQ_VECTOR_BASE + gsi);
}

/* Waits for any interrupt for at most `ms` milliseconds (KVM's LAPIC timer
 * runs at 1 GHz, divided by 16); returns its vector, IRQ_TIMER_VECTOR when
 * time ran out. */
static inline u32 irq_wait_ms(u32 ms) {
    mmio_write32(LAPIC_TIMER_INITIAL, ms * 62500);
    u32 vector = irq_wait();
    mmio_write32(LAPIC_TIMER_INITIAL, 0);
    return vector;
}

/* A virtio_wait_hook: sleeps until the queue's device interrupts, then
 * acknowledges its interrupt status. After a watchdog timeout it says so and
 * leaves the remaining waits to polling. */
static inline void virtio_irq_wait_hook(struct virtq *q) {
    struct virtio_device *d = q->device;
    /* No look at InterruptStatus first: an interrupt that came since the
     * caller looked at the used ring is pending in the LAPIC and ends this
     * wait at once, so none is lost. */
    u32 vector = irq_wait_ms(3000);
    if (vector == IRQ_TIMER_VECTOR) {
        puts("irq: no interrupt within 3 s, polling from now on\n");
        virtio_wait_hook = 0;
        return;
    }
    if (vector == IRQ_VECTOR_BASE + d->irq) irq_device_count++;
    u32 status = virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (status) virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, status);
}

/* Returns 1 once the device's interrupt has come since `count_before` was
 * read from irq_device_count, waiting up to 2 s for it (a device that
 * completes a request inside the notifying MMIO write leaves it pending in
 * the LAPIC, where this collects it). */
static inline int virtio_irq_collect(struct virtio_device *d, u32 count_before) {
    while (irq_device_count == count_before) {
        u32 vector = irq_wait_ms(2000);
        if (vector == IRQ_TIMER_VECTOR) return 0;
        if (vector == IRQ_VECTOR_BASE + d->irq) irq_device_count++;
    }
    u32 status = virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (status) virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, status);
    return 1;
}

#endif

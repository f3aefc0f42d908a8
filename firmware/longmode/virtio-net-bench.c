/* virtio-net throughput from a freestanding driver, for the benchmark (not a
 * test). A 64-bit guest: the device is found (ACPI DSDT) and set up in ring
 * 0; the work loops run in 64-bit ring 3 (guest_ring3.h), natively where
 * ring 0 is emulated (PVM emulates 32-bit compatibility mode too, which is
 * why this guest is not a Multiboot one). Both queues are polled, with
 * event-idx suppression when the device offers it (no interrupts: the IOAPIC
 * line stays masked, and used_event is kept far ahead).
 *
 * Parameters (no command line here): the u32 at 0x500000 is the number of
 * frames per transmit phase (0: 100000), the u32 at 0x500004 the number of
 * receive phases (0: 2; 0xffffffff: none). Output on COM1:
 *   virtio: acpi device at 0x........ size 0x.... irq N   (each one)
 *   virtio: id 1 vendor 0x........ at 0x........
 *   netbench: mac M queues T/R
 *   netbench: tx 64 start
 *   netbench: tx 64 N frames Y bytes C Kcycles       (every frame handed back used)
 *   netbench: tx 1514 start / netbench: tx 1514 ...
 *   netbench: rx ready                               (receive buffers posted: the host may send)
 *   netbench: rx R frames Y bytes C Kcycles          (one per phase; C from the phase's first frame to its last)
 *   netbench: done
 * Transmitted frames go to 02:00:00:00:00:01 (nobody: the host's kernel drops
 * them after the tap counts them), EtherType 0x88b5 (local experimental).
 * The host sends 0x88b5 frames to the guest's MAC; one with EtherType 0x88b6
 * ends a receive phase (it is not counted, nor is any other frame). Kcycles
 * are TSC cycles / 1024. Needs 6 MiB of RAM. Ends with 0; 3 no virtio-net,
 * 4 features refused, 5 no queue, 6 a timeout (10 s without progress). */
#define VIRTIO_POOL_PAGES 4
#include "virtio_acpi.h"
#include "guest_ring3.h"

#define EXIT_NO_DEVICE 3
#define EXIT_FEATURES 4
#define EXIT_QUEUE 5
#define EXIT_IO 6

__asm__(".pushsection .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "    mov $0x380000, %esp\n" /* KERNEL_STACK_TOP: below 1 MiB are the VMM's tables */
        "    call kernel_main\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n"
        ".popsection\n");

#define VIRTIO_NET_F_MAC 5
#define NET_HEADER 12
#define QUEUE_SIZE 64
#define FRAME 2048
#define ETHERTYPE_DATA 0x88b5
#define ETHERTYPE_END 0x88b6

static struct virtq receive, transmit;
/* Outside the image (the flat binary carries its .bss as zeros). */
#define RX_BUFFERS 0x400000u
#define TX_BUFFER 0x480000u
#define KERNEL_STACK_TOP 0x380000u
#define USER_STACK_TOP 0x3c0000u
/* u32 frames per transmit phase, u32 receive phases: the host may write them before the run (0: the defaults). */
#define PARAMETERS 0x500000u
static u8 (*const rx)[FRAME] = (u8(*)[FRAME])RX_BUFFERS;
static u8 *const tx = (u8 *)TX_BUFFER;
static u8 mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static u32 count = 100000, rx_phases = 2;

static void put_mac(const u8 m[6]) {
    for (int i = 0; i < 6; i++) {
        if (i) putc(':');
        putbytes(m + i, 1);
    }
}

static void result(const char *what, u32 frames, u64 bytes, u64 cycles) {
    puts("netbench: ");
    puts(what);
    putdec(frames);
    puts(" frames ");
    /* Up to 4 GB in a u32 is not enough for long runs: print KiB past it. */
    if (bytes >> 32) {
        putdec((u32)(bytes >> 10));
        puts("K bytes ");
    } else {
        putdec((u32)bytes);
        puts(" bytes ");
    }
    putdec((u32)(cycles >> 10));
    puts(" Kcycles\n");
}

/* No interrupt for a long while: this driver polls. */
static void quiet(struct virtq *q) {
    if (q->event_idx) *virtq_used_event(q) = (u16)(q->last_used + 0x7fff);
}

static __attribute__((noreturn)) void timeout(const char *where) {
    puts("netbench: timeout in ");
    puts(where);
    puts("\n");
    exit_with(EXIT_IO);
}

/* Sends `count` frames of `length` bytes, all from the one buffer `tx` (the
 * device only reads it), keeping the transmit queue as full as it goes. */
static void transmit_phase(u32 length) {
    memset(tx, 0, NET_HEADER + length);
    u8 *f = tx + NET_HEADER;
    memcpy(f, "\x02\x00\x00\x00\x00\x01", 6);
    memcpy(f + 6, mac, 6);
    f[12] = ETHERTYPE_DATA >> 8, f[13] = ETHERTYPE_DATA & 0xff;
    for (u32 i = 14; i < length; i++) f[i] = (u8)i;
    puts("netbench: tx ");
    putdec(length);
    puts(" start\n");
    struct virtq_buffer buffer = {tx, NET_HEADER + length, 0};
    u64 start = rdtsc(), progress = start;
    u32 submitted = 0, completed = 0;
    while (completed < count) {
        u16 before = transmit.avail_shadow;
        while (submitted < count && virtq_add(&transmit, &buffer, 1, 0) >= 0) submitted++;
        if (transmit.avail_shadow != before) virtq_kick_since(&transmit, before);
        u32 done = 0;
        while (virtq_get_used(&transmit, 0) >= 0) done++;
        if (done) {
            quiet(&transmit);
            completed += done;
            progress = rdtsc();
        } else if (rdtsc() - progress > virtio_wait_cycles) {
            timeout("tx");
        }
    }
    result(length == 64 ? "tx 64 " : "tx 1514 ", count, (u64)count * length, rdtsc() - start);
}

/* Counts frames until an end frame arrives, giving each buffer back at once. */
static void receive_phase(void) {
    u32 frames = 0;
    u64 bytes = 0, first = 0, last = 0, progress = rdtsc();
    for (;;) {
        u16 before = receive.avail_shadow;
        u32 length = 0;
        int head;
        int ended = 0;
        while ((head = virtq_get_used(&receive, &length)) >= 0) {
            const u8 *f = rx[head] + NET_HEADER;
            u32 type = length >= NET_HEADER + 14 ? (u32)(f[12] << 8 | f[13]) : 0;
            if (type == ETHERTYPE_END) {
                ended = 1;
            } else if (type == ETHERTYPE_DATA) { /* not the host's own IPv6 chatter */
                last = rdtsc();
                if (!frames) first = last;
                frames++;
                bytes += length - NET_HEADER;
            }
            struct virtq_buffer again = {rx[head], FRAME, 1};
            virtq_add(&receive, &again, 1, 0);
        }
        if (receive.avail_shadow != before) {
            quiet(&receive);
            virtq_kick_since(&receive, before);
            progress = rdtsc();
        } else if (rdtsc() - progress > 4 * virtio_wait_cycles) {
            timeout("rx");
        }
        if (ended) break;
    }
    result("rx ", frames, bytes, last - first);
}

static void work(void) {
    transmit_phase(64);
    transmit_phase(1514);
    if (rx_phases) {
        for (int i = 0; i < QUEUE_SIZE; i++) {
            struct virtq_buffer buffer = {rx[i], FRAME, 1};
            virtq_add(&receive, &buffer, 1, 0);
        }
        quiet(&receive);
        virtq_kick_since(&receive, 0);
        puts("netbench: rx ready\n");
        for (u32 i = 0; i < rx_phases; i++) receive_phase();
    }
    puts("netbench: done\n");
    exit_with(0);
}

static void setup_queue(struct virtio_device *d, struct virtq *q, u16 index) {
    if (virtq_setup(d, q, index, QUEUE_SIZE) != 0) {
        puts("virtio: cannot set up queue ");
        putdec(index);
        puts("\n");
        exit_with(EXIT_QUEUE);
    }
}

void kernel_main(void);
void kernel_main(void) {
    static struct virtio_device devices[8];
    int found = virtio_parse_acpi(devices, 8);
    for (int i = 0; i < found; i++) virtio_print_location("acpi", &devices[i]);
    struct virtio_device *d = virtio_find(devices, found, VIRTIO_ID_NET);
    if (!d) {
        puts("virtio: no virtio-net in the DSDT\n");
        exit_with(EXIT_NO_DEVICE);
    }
    if (virtio_begin(d, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX)) != 0) exit_with(EXIT_FEATURES);
    u32 frames = *(volatile u32 *)PARAMETERS, phases = *(volatile u32 *)(PARAMETERS + 4);
    if (frames) count = frames;
    if (phases) rx_phases = phases == 0xffffffffu ? 0 : phases;
    if (virtio_has(d, VIRTIO_NET_F_MAC))
        for (u32 i = 0; i < 6; i++) mac[i] = virtio_config8(d, i);
    setup_queue(d, &receive, 0);
    setup_queue(d, &transmit, 1);
    virtio_driver_ok(d);
    puts("netbench: mac ");
    put_mac(mac);
    puts(" queues ");
    putdec(transmit.size);
    puts("/");
    putdec(receive.size);
    puts("\n");
    ring3_run(work, KERNEL_STACK_TOP, USER_STACK_TOP);
}

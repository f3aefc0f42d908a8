/* A small virtio-mmio (version 2, "modern") driver library for the
 * freestanding 32-bit guests in firmware/multiboot/, written to the virtio 1.2
 * specification: section 4.2 (the MMIO transport), 2.7 (split virtqueues),
 * 3.1 (device initialisation). Guest-physical = virtual (paging is off).
 *
 * Discovery: from `virtio_mmio.device=<size>@<base>:<irq>[:<id>]` entries on
 * the command line (Linux's syntax, which swiftvmm and QEMU's microvm append)
 * and, in virtio_acpi.h, from the ACPI DSDT's LNRO0005 devices.
 *
 * Waiting: by polling the used ring (any context), or, when a guest installs
 * `virtio_wait_hook` (guest_irq.h does), by sleeping until the device's
 * interrupt. Every wait is bounded: a device that never answers is reported
 * ("timeout") rather than hanging the guest. */
#ifndef SWIFTVMM_VIRTIO_MMIO_H
#define SWIFTVMM_VIRTIO_MMIO_H

#include "guest_c.h"

/* Registers (4.2.2). */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc
#define VIRTIO_MMIO_CONFIG 0x100

#define VIRTIO_MMIO_MAGIC_VALUE 0x74726976u /* "virt" */

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

/* Reserved feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_BIT(n) (1ull << (n))

/* Device IDs (5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_BALLOON 5
#define VIRTIO_ID_VSOCK 19

/* Split virtqueue layout (2.7). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
    u64 addr;
    u32 len;
    u16 flags;
    u16 next;
};
struct virtq_avail {
    u16 flags;
    u16 idx;
    u16 ring[]; /* size entries, then used_event */
};
struct virtq_used_elem {
    u32 id;
    u32 len;
};
struct virtq_used {
    u16 flags;
    u16 idx;
    struct virtq_used_elem ring[]; /* size entries, then avail_event (u16) */
};

/* One transport window, as discovered. */
struct virtio_device {
    u32 base;
    u32 size;
    u32 irq;
    u32 device_id; /* 0 until probed */
    u32 vendor_id;
    u64 features; /* negotiated */
};

/* The largest queue this library drives: one 4 KiB page holds it. */
#define VIRTQ_MAX 64
/* Descriptors in each chain's indirect table. */
#define VIRTQ_INDIRECT_MAX 8

struct virtq {
    struct virtio_device *device;
    u16 index;
    u16 size;
    u16 free_head;
    u16 free_count;
    u16 last_used;
    u16 avail_shadow;
    int event_idx;
    int indirect;
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    /* An indirect table per head (used when a chain is added indirect). */
    struct virtq_desc (*tables)[VIRTQ_INDIRECT_MAX];
    /* Chain length per head, so a used head frees the right number of descriptors. */
    u16 chain[VIRTQ_MAX];
};

/* A buffer of a request: `device_writes` for the device-writable parts (2.7.4). */
struct virtq_buffer {
    const void *address;
    u32 length;
    int device_writes;
};

/* Page-granular memory for queues and tables: guest RAM in .bss, never freed. */
#ifndef VIRTIO_POOL_PAGES
#define VIRTIO_POOL_PAGES 24 /* a guest may ask for fewer before including this */
#endif
static u8 virtio_pool[VIRTIO_POOL_PAGES * 4096] __attribute__((aligned(4096), unused));
static u32 virtio_pool_used __attribute__((unused));

static inline void *virtio_alloc_pages(u32 pages) {
    if (virtio_pool_used + pages > VIRTIO_POOL_PAGES) {
        puts("virtio: out of queue memory\n");
        exit_with(0x7d);
    }
    void *p = virtio_pool + virtio_pool_used * 4096;
    virtio_pool_used += pages;
    return p;
}

/* Called while a wait finds nothing new; returns 0 to keep waiting. NULL: spin. */
static void (*virtio_wait_hook)(struct virtq *q) __attribute__((unused));
/* TSC cycles before a wait gives up: 2^35, 10 s at 3.4 GHz, 34 s at 1 GHz. */
static u64 virtio_wait_cycles __attribute__((unused)) = 1ull << 35;

static inline u64 rdtsc(void) {
    u32 low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (u64)high << 32 | low;
}

static inline u32 virtio_read(const struct virtio_device *d, u32 reg) { return mmio_read32(d->base + reg); }
static inline void virtio_write(const struct virtio_device *d, u32 reg, u32 value) { mmio_write32(d->base + reg, value); }

/* ---- Discovery from the command line ---- */

/* Parses a number the way Linux's memparse does: decimal, 0x hex or 0 octal,
 * then an optional K, M or G. Advances *p past it. */
static inline u64 virtio_parse_number(const char **p) {
    const char *s = *p;
    u64 value = 0;
    u32 radix = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        radix = 16;
        s += 2;
    } else if (s[0] == '0') {
        radix = 8;
    }
    for (;; s++) {
        u32 digit;
        if (*s >= '0' && *s <= '9')
            digit = (u32)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            digit = (u32)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            digit = (u32)(*s - 'A' + 10);
        else
            break;
        if (digit >= radix) break;
        value = value * radix + digit;
    }
    switch (*s) {
    case 'G': case 'g': value <<= 10; /* fall through */
    case 'M': case 'm': value <<= 10; /* fall through */
    case 'K': case 'k': value <<= 10; s++; break;
    default: break;
    }
    *p = s;
    return value;
}

/* Fills `devices` from every `virtio_mmio.device=` entry of `line`; returns how many. */
static inline int virtio_parse_command_line(const char *line, struct virtio_device *devices, int max) {
    static const char key[] = "virtio_mmio.device=";
    int count = 0;
    const char *p = line;
    while (*p && count < max) {
        /* A word starts at the beginning or after a space. */
        if ((p == line || p[-1] == ' ') && bytes_equal(p, key, sizeof key - 1)) {
            const char *s = p + sizeof key - 1;
            struct virtio_device d = {0};
            d.size = (u32)virtio_parse_number(&s);
            if (*s == '@') {
                s++;
                d.base = (u32)virtio_parse_number(&s);
                if (*s == ':') {
                    s++;
                    d.irq = (u32)virtio_parse_number(&s);
                    if (d.size && d.base) devices[count++] = d;
                }
            }
            p = s;
            continue;
        }
        p++;
    }
    return count;
}

/* ---- Device initialisation (3.1.1) ---- */

/* Reads the identification registers; 0 if this is a modern virtio-mmio device. */
static inline int virtio_probe(struct virtio_device *d) {
    if (virtio_read(d, VIRTIO_MMIO_MAGIC) != VIRTIO_MMIO_MAGIC_VALUE) return -1;
    if (virtio_read(d, VIRTIO_MMIO_VERSION) != 2) return -2;
    d->device_id = virtio_read(d, VIRTIO_MMIO_DEVICE_ID);
    d->vendor_id = virtio_read(d, VIRTIO_MMIO_VENDOR_ID);
    return d->device_id == 0 ? -3 : 0;
}

static inline u64 virtio_device_features(const struct virtio_device *d) {
    virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    u64 high = virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    return high << 32 | virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

/* Reset, ACKNOWLEDGE, DRIVER, then the features the device offers among
 * `wanted` (VERSION_1 always) and FEATURES_OK. Returns 0, or -1 if the device
 * lacks VERSION_1 or refuses FEATURES_OK (the driver then sets FAILED). */
static inline int virtio_begin(struct virtio_device *d, u64 wanted) {
    virtio_write(d, VIRTIO_MMIO_STATUS, 0);
    if (virtio_read(d, VIRTIO_MMIO_STATUS) != 0) return -2;
    virtio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    virtio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    u64 offered = virtio_device_features(d);
    u64 accepted = offered & (wanted | VIRTIO_BIT(VIRTIO_F_VERSION_1));
    if (!(accepted & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
        virtio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_FAILED);
        return -1;
    }
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)accepted);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (u32)(accepted >> 32));
    u32 status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
    virtio_write(d, VIRTIO_MMIO_STATUS, status);
    if (!(virtio_read(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        virtio_write(d, VIRTIO_MMIO_STATUS, status | VIRTIO_STATUS_FAILED);
        return -1;
    }
    d->features = accepted;
    return 0;
}

static inline void virtio_driver_ok(struct virtio_device *d) {
    virtio_write(d, VIRTIO_MMIO_STATUS,
                 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

static inline int virtio_has(const struct virtio_device *d, int bit) { return (d->features >> bit) & 1; }

/* Device configuration (4.2.2: any width; a 64-bit field as two reads under
 * one ConfigGeneration). */
static inline u8 virtio_config8(const struct virtio_device *d, u32 offset) {
    return mmio_read8(d->base + VIRTIO_MMIO_CONFIG + offset);
}
static inline u16 virtio_config16(const struct virtio_device *d, u32 offset) {
    return mmio_read16(d->base + VIRTIO_MMIO_CONFIG + offset);
}
static inline u32 virtio_config32(const struct virtio_device *d, u32 offset) {
    return mmio_read32(d->base + VIRTIO_MMIO_CONFIG + offset);
}
static inline void virtio_config_write32(const struct virtio_device *d, u32 offset, u32 value) {
    mmio_write32(d->base + VIRTIO_MMIO_CONFIG + offset, value);
}
static inline u64 virtio_config64(const struct virtio_device *d, u32 offset) {
    u32 generation, low, high;
    do {
        generation = virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
        low = virtio_config32(d, offset);
        high = virtio_config32(d, offset + 4);
    } while (generation != virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION));
    return (u64)high << 32 | low;
}

/* ---- Split virtqueues ---- */

/* Sets up queue `index` with at most `size` entries (and the device's
 * QueueNumMax), all in one page: descriptors, then the driver area at
 * +1024, the device area at +2048. Returns 0, or -1 if the queue is absent
 * or already live. Done between FEATURES_OK and DRIVER_OK. */
static inline int virtq_setup(struct virtio_device *d, struct virtq *q, u16 index, u16 size) {
    virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 0) return -1;
    u32 max = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max == 0) return -1;
    if (size > VIRTQ_MAX) size = VIRTQ_MAX;
    if (size > max) size = (u16)max;
    u8 *page = virtio_alloc_pages(1);
    memset(q, 0, sizeof *q);
    q->device = d;
    q->index = index;
    q->size = size;
    q->desc = (struct virtq_desc *)page;
    q->avail = (struct virtq_avail *)(page + 1024);
    q->used = (struct virtq_used *)(page + 2048);
    q->event_idx = virtio_has(d, VIRTIO_F_EVENT_IDX);
    q->indirect = virtio_has(d, VIRTIO_F_INDIRECT_DESC);
    if (q->indirect) q->tables = virtio_alloc_pages((size * VIRTQ_INDIRECT_MAX * 16 + 4095) / 4096);
    for (u16 i = 0; i < size; i++) q->desc[i].next = (u16)(i + 1);
    q->free_count = size;
    virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (u32)(uptr)q->desc);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (u32)(uptr)q->avail);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (u32)(uptr)q->used);
    virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
    virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
    return 0;
}

static inline volatile u16 *virtq_used_event(struct virtq *q) { return &q->avail->ring[q->size]; }
static inline volatile u16 *virtq_avail_event(struct virtq *q) { return (volatile u16 *)&q->used->ring[q->size]; }

/* Makes `count` buffers one chain (device-readable ones must come first) and
 * puts it in the available ring; through an indirect table when `indirect`
 * and the feature was negotiated. Returns the head, or -1 if the queue is
 * full. The device sees it after virtq_kick. */
static inline int virtq_add(struct virtq *q, const struct virtq_buffer *buffers, int count, int indirect) {
    int use_table = indirect && q->indirect && count > 1 && count <= VIRTQ_INDIRECT_MAX;
    u16 needed = use_table ? 1 : (u16)count;
    if (count < 1 || q->free_count < needed) return -1;
    u16 head = q->free_head;
    if (use_table) {
        struct virtq_desc *table = q->tables[head];
        for (int i = 0; i < count; i++) {
            table[i].addr = (u32)(uptr)buffers[i].address;
            table[i].len = buffers[i].length;
            table[i].flags = (u16)((buffers[i].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < count ? VIRTQ_DESC_F_NEXT : 0));
            table[i].next = (u16)(i + 1);
        }
        q->desc[head].addr = (u32)(uptr)table;
        q->desc[head].len = (u32)count * 16;
        q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
        q->free_head = q->desc[head].next;
    } else {
        u16 i = head, last = head;
        for (int n = 0; n < count; n++) {
            q->desc[i].addr = (u32)(uptr)buffers[n].address;
            q->desc[i].len = buffers[n].length;
            q->desc[i].flags = (u16)((buffers[n].device_writes ? VIRTQ_DESC_F_WRITE : 0) | (n + 1 < count ? VIRTQ_DESC_F_NEXT : 0));
            last = i;
            i = q->desc[i].next;
        }
        q->free_head = q->desc[last].next;
    }
    q->free_count = (u16)(q->free_count - needed);
    q->chain[head] = needed;
    q->avail->ring[q->avail_shadow % q->size] = head;
    barrier();
    q->avail_shadow++;
    ((volatile struct virtq_avail *)q->avail)->idx = q->avail_shadow;
    return head;
}

/* Tells the device about new chains, unless VIRTIO_F_EVENT_IDX says it has not
 * asked for it yet (2.7.10). `old` is avail->idx before the adds. */
static inline void virtq_kick_since(struct virtq *q, u16 old) {
    full_barrier();
    if (q->event_idx) {
        u16 event = *virtq_avail_event(q), now = q->avail_shadow;
        if ((u16)(now - event - 1) >= (u16)(now - old)) return;
    } else if (((volatile struct virtq_used *)q->used)->flags & 1) {
        return; /* VIRTQ_USED_F_NO_NOTIFY */
    }
    virtio_write(q->device, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}
static inline void virtq_kick(struct virtq *q) { virtq_kick_since(q, (u16)(q->avail_shadow - 1)); }

/* The next used chain: its head (and the length the device wrote in *length),
 * with its descriptors back on the free list; -1 if there is none yet. */
static inline int virtq_get_used(struct virtq *q, u32 *length) {
    if (((volatile struct virtq_used *)q->used)->idx == q->last_used) return -1;
    barrier();
    volatile struct virtq_used_elem *e = &q->used->ring[q->last_used % q->size];
    u32 head = e->id;
    if (length) *length = e->len;
    q->last_used++;
    if (q->event_idx) *virtq_used_event(q) = q->last_used; /* interrupt me for the next one */
    if (head >= q->size) {
        puts("virtio: device returned a bad head\n");
        exit_with(0x7c);
    }
    /* Back on the free list: the chain's own links end at its last descriptor. */
    u16 last = (u16)head;
    for (u16 n = 1; n < q->chain[head]; n++) last = q->desc[last].next;
    q->desc[last].next = q->free_head;
    q->free_head = (u16)head;
    q->free_count = (u16)(q->free_count + q->chain[head]);
    return (int)head;
}

/* Waits for the next used chain; returns its head, or -1 after the bounded wait. */
static inline int virtq_wait(struct virtq *q, u32 *length) {
    u64 start = rdtsc();
    while (rdtsc() - start < virtio_wait_cycles) {
        int head = virtq_get_used(q, length);
        if (head >= 0) return head;
        if (q->event_idx) {
            *virtq_used_event(q) = q->last_used;
            full_barrier();
            head = virtq_get_used(q, length);
            if (head >= 0) return head;
        }
        if (virtio_wait_hook) virtio_wait_hook(q);
    }
    return -1;
}

/* Adds one chain, notifies, and waits for it; returns the length the device
 * wrote, or -1 on a timeout (reported on COM1). */
static inline int virtq_transfer(struct virtq *q, const struct virtq_buffer *buffers, int count, int indirect) {
    int head = virtq_add(q, buffers, count, indirect);
    if (head < 0) {
        puts("virtio: queue full\n");
        return -1;
    }
    virtq_kick(q);
    u32 length = 0;
    int used = virtq_wait(q, &length);
    if (used < 0) {
        puts("virtio: timeout waiting for queue ");
        putdec(q->index);
        puts("\n");
        return -1;
    }
    if (used != head) {
        puts("virtio: used an unexpected head\n");
        return -1;
    }
    return (int)length;
}

/* ---- Reporting ---- */

/* "virtio: <source> device at 0x........ size 0x.... irq N" */
static inline void virtio_print_location(const char *source, const struct virtio_device *d) {
    puts("virtio: ");
    puts(source);
    puts(" device at ");
    puthex(d->base, 8);
    puts(" size ");
    puthex(d->size, 4);
    puts(" irq ");
    putdec(d->irq);
    puts("\n");
}

/* Probes each device in `devices` and returns the first with `device_id`,
 * printing "virtio: id N vendor 0x........ at 0x........" for each one that
 * answers. NULL if none does. */
static inline struct virtio_device *virtio_find(struct virtio_device *devices, int count, u32 device_id) {
    struct virtio_device *found = 0;
    for (int i = 0; i < count; i++) {
        int probe = virtio_probe(&devices[i]);
        if (probe != 0) {
            puts("virtio: nothing at ");
            puthex(devices[i].base, 8);
            puts(probe == -2 ? " (not version 2)\n" : "\n");
            continue;
        }
        puts("virtio: id ");
        putdec(devices[i].device_id);
        puts(" vendor ");
        puthex(devices[i].vendor_id, 8);
        puts(" at ");
        puthex(devices[i].base, 8);
        puts("\n");
        if (!found && devices[i].device_id == device_id) found = &devices[i];
    }
    return found;
}

#endif

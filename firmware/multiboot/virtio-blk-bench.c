/* virtio-blk throughput from a freestanding driver, for the benchmark (not a
 * test): keeps up to `depth` requests in flight (indirect chains where
 * negotiated, so one descriptor each) and polls the used ring, with event-idx
 * suppression when the device offers it.
 *
 * Command line (all optional): depth=D (1-32, default 16), block=B (bytes per
 * sequential request, multiple of 512, at most 65536, default 65536),
 * count=N (random 4 KiB reads, default 4096), limit=BYTES (the sequential
 * phases cover min(limit, capacity); default the whole disk). Phases, each
 * between a "start" line and its result on COM1:
 *   bench: capacity N sectors depth D block B
 *   bench: seqwrite start
 *   bench: seqwrite R requests Y bytes C Kcycles
 *   bench: seqread start / bench: seqread ...
 *   bench: randread start / bench: randread ...        (4 KiB at pseudo-random 4 KiB-aligned offsets)
 *   bench: flush status 0
 *   bench: done
 * Kcycles are TSC cycles / 1024; a host can time the lines instead. Buffers
 * live at 8 MiB (RAM: 8 MiB + depth * block at least). Writes overwrite the
 * disk: give it a scratch image. Ends with 0, or 6 on a failed request. */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define VIRTIO_BLK_F_FLUSH 9
#define MAX_DEPTH 32
#define BUFFERS 0x800000u

struct blk_header {
    u32 type;
    u32 reserved;
    u64 sector;
};

static struct virtq queue;
static struct blk_header headers[MAX_DEPTH];
static volatile u8 statuses[MAX_DEPTH];
static int slot_of_head[VIRTQ_MAX];
static u32 free_slots[MAX_DEPTH], free_count;
static u32 depth = 16, block = 65536;

static u32 option(const char *line, const char *key, u32 fallback) {
    const char *value = command_line_value(line, key);
    return value ? (u32)virtio_parse_number(&value) : fallback;
}

/* Collects every used request, checking its status; returns how many. */
static u32 reap(void) {
    u32 done = 0;
    int head;
    while ((head = virtq_get_used(&queue, 0)) >= 0) {
        int slot = slot_of_head[head];
        if (statuses[slot] != 0) {
            puts("bench: request failed, status ");
            putdec(statuses[slot]);
            puts("\n");
            exit_with(EXIT_IO);
        }
        free_slots[free_count++] = (u32)slot;
        done++;
    }
    return done;
}

/* Runs `total` requests of `type` and `bytes` each; `sector_of(i)` says where. */
static void phase(const char *name, u32 type, u32 total, u32 bytes, u64 (*sector_of)(u32)) {
    puts("bench: ");
    puts(name);
    puts(" start\n");
    u64 start = rdtsc();
    u32 submitted = 0, completed = 0;
    while (completed < total) {
        u16 before = queue.avail_shadow;
        while (submitted < total && free_count > 0) {
            u32 slot = free_slots[--free_count];
            headers[slot] = (struct blk_header){type, 0, sector_of(submitted)};
            statuses[slot] = 0xff;
            struct virtq_buffer buffers[3] = {
                {&headers[slot], sizeof headers[slot], 0},
                {(const void *)(BUFFERS + slot * block), bytes, type == 0},
                {(const void *)&statuses[slot], 1, 1},
            };
            int head = virtq_add(&queue, buffers, 3, 1);
            if (head < 0) {
                free_slots[free_count++] = slot;
                break;
            }
            slot_of_head[head] = (int)slot;
            submitted++;
        }
        if (queue.avail_shadow != before) virtq_kick_since(&queue, before);
        u32 done = reap();
        if (!done) {
            /* Nothing yet: wait for one (bounded), then take what else is there. */
            u32 length;
            int head = virtq_wait(&queue, &length);
            if (head < 0) {
                puts("bench: timeout\n");
                exit_with(EXIT_IO);
            }
            int slot = slot_of_head[head];
            if (statuses[slot] != 0) exit_with(EXIT_IO);
            free_slots[free_count++] = (u32)slot;
            done = 1 + reap();
        }
        completed += done;
    }
    u64 cycles = rdtsc() - start;
    puts("bench: ");
    puts(name);
    puts(" ");
    putdec(total);
    puts(" requests ");
    putdec(total * bytes);
    puts(" bytes ");
    putdec((u32)(cycles >> 10));
    puts(" Kcycles\n");
}

static u32 sectors_per_block;
static u64 sequential(u32 i) { return (u64)i * sectors_per_block; }
static u32 random_state = 0x9e3779b9, random_blocks;
static u64 random_4k(u32 i) {
    (void)i;
    random_state ^= random_state << 13;
    random_state ^= random_state >> 17;
    random_state ^= random_state << 5;
    return (u64)(random_state % random_blocks) * 8;
}

void kernel_main(u32 magic, u32 info) {
    u64 wanted = VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    struct virtio_device *d = virtio_guest_start(magic, info, VIRTIO_ID_BLOCK, wanted, 0);
    const char *line = multiboot_command_line(info);
    depth = option(line, "depth", 16);
    block = option(line, "block", 65536);
    u32 count = option(line, "count", 4096);
    if (depth < 1) depth = 1;
    if (depth > MAX_DEPTH) depth = MAX_DEPTH;
    if (block < 512 || block > 65536 || block % 512) block = 65536;
    virtio_guest_queue(d, &queue, 0, 64);
    virtio_driver_ok(d);
    /* Without indirect tables a request takes three descriptors. */
    if (!queue.indirect && depth > queue.size / 3u) depth = queue.size / 3u;
    for (u32 i = 0; i < depth; i++) free_slots[free_count++] = i;

    u64 capacity = virtio_config64(d, 0);
    u64 bytes = capacity * 512;
    u32 limit = option(line, "limit", 0);
    if (limit && limit < bytes) bytes = limit;
    sectors_per_block = block / 512;
    u32 requests = (u32)(bytes >> 9) / sectors_per_block;
    random_blocks = (u32)(capacity / 8);
    puts("bench: capacity ");
    putdec((u32)capacity);
    puts(" sectors depth ");
    putdec(depth);
    puts(" block ");
    putdec(block);
    puts("\n");
    if (!requests || !random_blocks) exit_with(EXIT_IO);

    phase("seqwrite", 1, requests, block, sequential);
    phase("seqread", 0, requests, block, sequential);
    phase("randread", 0, count, 4096, random_4k);
    if (virtio_has(d, VIRTIO_BLK_F_FLUSH)) {
        u32 slot = free_slots[--free_count];
        headers[slot] = (struct blk_header){4, 0, 0};
        statuses[slot] = 0xff;
        struct virtq_buffer buffers[2] = {{&headers[slot], sizeof headers[slot], 0}, {(const void *)&statuses[slot], 1, 1}};
        if (virtq_transfer(&queue, buffers, 2, 0) < 0) exit_with(EXIT_IO);
        puts("bench: flush status ");
        putdec(statuses[slot]);
        puts("\n");
    }
    puts("bench: done\n");
    exit_with(0);
}

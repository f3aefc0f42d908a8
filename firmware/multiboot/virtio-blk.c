/* virtio-blk from a freestanding driver (virtio 1.2, 5.2).
 *
 * Finds the block device (command line and ACPI), negotiates RO, BLK_SIZE,
 * FLUSH, DISCARD, WRITE_ZEROES, EVENT_IDX and INDIRECT_DESC where offered,
 * and with one queue of 16:
 *   blk: capacity N sectors read-only yes|no
 *   blk: id '<the device's serial, up to 20 bytes>'       (GET_ID)
 *   blk: sector 0 starts '<first 16 bytes>'                (IN)
 * On a read-only disk it then tries one write to sector 1 and expects
 * VIRTIO_BLK_S_IOERR ("blk: write refused, status 1"); otherwise:
 *   blk: wrote 8 sectors at 1 status 0                    (OUT, through an indirect table when negotiated)
 *   blk: flush status 0                                   (FLUSH, if offered)
 *   blk: read back 8 sectors: match                       (IN, a direct chain)
 *   blk: write-zeroes 8 sectors at 16 status 0, read back zero   (if offered; unmap allowed)
 *   blk: discard 8 sectors at 24 status 0                 (if offered)
 *   blk: done
 * The pattern: the byte at disk offset o is (o & 0xff) ^ ((o >> 9) * 0x3b & 0xff) ^ 0xa5.
 * Exit statuses: virtio_guest.h. */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define SECTORS 8

struct blk_header {
    u32 type;
    u32 reserved;
    u64 sector;
};
struct blk_range {
    u64 sector;
    u32 count;
    u32 flags;
};

static struct virtq queue;
static struct blk_header header;
static volatile u8 status;
static u8 data[SECTORS * 512] __attribute__((aligned(4096)));
static u8 readback[SECTORS * 512] __attribute__((aligned(4096)));

/* One request: header, optional data (`device_writes` for reads), status. Returns the status byte. */
static int request(u32 type, u64 sector, void *buffer, u32 length, int device_writes, int indirect) {
    header.type = type;
    header.reserved = 0;
    header.sector = sector;
    status = 0xff;
    struct virtq_buffer buffers[3] = {{&header, sizeof header, 0}};
    int count = 1;
    if (length) buffers[count++] = (struct virtq_buffer){buffer, length, device_writes};
    buffers[count++] = (struct virtq_buffer){(const void *)&status, 1, 1};
    if (virtq_transfer(&queue, buffers, count, indirect) < 0) exit_with(EXIT_IO);
    return status;
}

static void report_status(const char *what, int value) {
    puts(what);
    puts(" status ");
    putdec((u32)value);
    puts("\n");
    if (value != 0) exit_with(EXIT_IO);
}

static u8 pattern(u32 offset) { return (u8)((offset & 0xff) ^ ((offset >> 9) * 0x3b & 0xff) ^ 0xa5); }

void kernel_main(u32 magic, u32 info) {
    u64 wanted = VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) |
                 VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) |
                 VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    struct virtio_device *d = virtio_guest_start(magic, info, VIRTIO_ID_BLOCK, wanted, 0);
    virtio_guest_queue(d, &queue, 0, 16);
    virtio_driver_ok(d);

    u64 capacity = virtio_config64(d, 0);
    int read_only = virtio_has(d, VIRTIO_BLK_F_RO);
    puts("blk: capacity ");
    putdec((u32)capacity);
    puts(" sectors read-only ");
    puts(read_only ? "yes\n" : "no\n");
    if (capacity < 32) {
        puts("blk: disk too small (32 sectors needed)\n");
        exit_with(EXIT_IO);
    }

    u8 id[20];
    memset(id, 0, sizeof id);
    int s = request(VIRTIO_BLK_T_GET_ID, 0, id, sizeof id, 1, 0);
    puts("blk: id ");
    u32 id_length = 0;
    while (id_length < sizeof id && id[id_length]) id_length++;
    putquoted(id, id_length);
    puts(" status ");
    putdec((u32)s);
    puts("\n");

    report_status("blk: read sector 0", request(VIRTIO_BLK_T_IN, 0, readback, 512, 1, 0));
    puts("blk: sector 0 starts ");
    putquoted(readback, 16);
    puts("\n");

    if (read_only) {
        memset(data, 0x55, 512);
        s = request(VIRTIO_BLK_T_OUT, 1, data, 512, 0, 0);
        puts(s == 1 ? "blk: write refused, status 1\n" : "blk: write to a read-only disk was not refused\n");
        puts("blk: done\n");
        exit_with(s == 1 ? 0 : EXIT_IO);
    }

    for (u32 i = 0; i < sizeof data; i++) data[i] = pattern(512 + i);
    puts("blk: wrote 8 sectors at 1");
    report_status("", request(VIRTIO_BLK_T_OUT, 1, data, sizeof data, 0, 1));
    if (virtio_has(d, VIRTIO_BLK_F_FLUSH)) report_status("blk: flush", request(VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, 0));

    memset(readback, 0, sizeof readback);
    report_status("blk: read", request(VIRTIO_BLK_T_IN, 1, readback, sizeof readback, 1, 0));
    int match = bytes_equal(data, readback, sizeof data);
    puts(match ? "blk: read back 8 sectors: match\n" : "blk: read back 8 sectors: MISMATCH\n");
    if (!match) exit_with(EXIT_MISMATCH);

    if (virtio_has(d, VIRTIO_BLK_F_WRITE_ZEROES)) {
        static struct blk_range range;
        range = (struct blk_range){16, 8, 1}; /* unmap allowed */
        s = request(VIRTIO_BLK_T_WRITE_ZEROES, 0, &range, sizeof range, 0, 0);
        puts("blk: write-zeroes 8 sectors at 16 status ");
        putdec((u32)s);
        if (s != 0) exit_with(EXIT_IO);
        memset(readback, 0xee, sizeof readback);
        report_status(", read", request(VIRTIO_BLK_T_IN, 16, readback, sizeof readback, 1, 0));
        int zero = 1;
        for (u32 i = 0; i < sizeof readback; i++) zero &= readback[i] == 0;
        puts(zero ? "blk: zeroes read back\n" : "blk: zeroes did NOT read back\n");
        if (!zero) exit_with(EXIT_MISMATCH);
    } else {
        puts("blk: write-zeroes not offered\n");
    }
    if (virtio_has(d, VIRTIO_BLK_F_DISCARD)) {
        static struct blk_range range;
        range = (struct blk_range){24, 8, 0};
        report_status("blk: discard 8 sectors at 24", request(VIRTIO_BLK_T_DISCARD, 0, &range, sizeof range, 0, 0));
    } else {
        puts("blk: discard not offered\n");
    }
    puts("blk: done\n");
    exit_with(0);
}

/* virtio-balloon (traditional balloon, virtio 1.2, 5.5) from a freestanding
 * driver: inflateq 0 and deflateq 1, 4 KiB page frame numbers.
 *
 * Touches N pages from 16 MiB (N from `pages=N` on the command line, default
 * 4096, 16 MiB; the guest needs 16 MiB + N pages of RAM), writing each page's
 * address in its first word, so the host backs them; gives them all to the
 * balloon in requests of 1024 frame numbers and sets `actual`; then takes them
 * back through deflateq, sets `actual` to 0, and reads them: a page the host
 * discarded reads zero.
 *   balloon: num_pages N actual N                  (the device's request, before)
 *   balloon: touched N pages at 0x01000000
 *   balloon: inflated N pages
 *   balloon: deflated N pages
 *   balloon: N of N pages read zero after deflate
 *   balloon: done
 * With the word `sync` on the command line it waits after "touched" and after
 * "inflated" for one byte on COM1, so a test can measure the host between.
 * Ends with 0, or 6 if a request failed (statuses in virtio_guest.h). */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define REGION 0x1000000u
#define PER_REQUEST 1024

static struct virtq inflate, deflate;
static u32 frames[PER_REQUEST];

/* Sends every page's frame number through `q`, PER_REQUEST at a time. */
static void transfer_pages(struct virtq *q, u32 pages) {
    for (u32 first = 0; first < pages; first += PER_REQUEST) {
        u32 count = pages - first < PER_REQUEST ? pages - first : PER_REQUEST;
        for (u32 i = 0; i < count; i++) frames[i] = (REGION >> 12) + first + i;
        struct virtq_buffer buffer = {frames, count * 4, 0};
        if (virtq_transfer(q, &buffer, 1, 0) < 0) exit_with(EXIT_IO);
    }
}

static void report(const char *what, u32 pages) {
    puts("balloon: ");
    puts(what);
    putdec(pages);
    puts(" pages\n");
}

void kernel_main(u32 magic, u32 info) {
    struct virtio_device *d =
        virtio_guest_start(magic, info, VIRTIO_ID_BALLOON, VIRTIO_BIT(VIRTIO_BALLOON_F_MUST_TELL_HOST), 0);
    const char *line = multiboot_command_line(info), *count = command_line_value(line, "pages");
    u32 pages = count ? (u32)virtio_parse_number(&count) : 4096;
    int sync = command_line_has(line, "sync");
    virtio_guest_queue(d, &inflate, 0, 8);
    virtio_guest_queue(d, &deflate, 1, 8);
    virtio_driver_ok(d);
    puts("balloon: num_pages ");
    putdec(virtio_config32(d, 0));
    puts(" actual ");
    putdec(virtio_config32(d, 4));
    puts("\n");

    for (u32 i = 0; i < pages; i++) *(volatile u32 *)(REGION + i * 4096) = REGION + i * 4096;
    puts("balloon: touched ");
    putdec(pages);
    puts(" pages at ");
    puthex(REGION, 8);
    puts("\n");
    if (sync) getc_com1();

    transfer_pages(&inflate, pages);
    virtio_config_write32(d, 4, pages);
    report("inflated ", pages);
    if (sync) getc_com1();

    transfer_pages(&deflate, pages);
    virtio_config_write32(d, 4, 0);
    report("deflated ", pages);
    u32 zero = 0;
    for (u32 i = 0; i < pages; i++) zero += *(volatile u32 *)(REGION + i * 4096) == 0;
    puts("balloon: ");
    putdec(zero);
    puts(" of ");
    putdec(pages);
    puts(" pages read zero after deflate\n");
    puts("balloon: done\n");
    exit_with(0);
}

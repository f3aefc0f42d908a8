/* virtio-rng (entropy device, virtio 1.2, 5.4) from a freestanding driver that
 * sleeps on the device's interrupt (IOAPIC line from the command line or the
 * DSDT, see guest_irq.h) rather than polling.
 *
 * Fills two 32-byte buffers with one request each and prints:
 *   rng: 32 bytes <64 hex digits>        (twice)
 *   rng: interrupt after each request     (or "rng: NO interrupt after a request")
 *   rng: done
 * Ends with 0, 6 if a request brought no interrupt, or 7 if the 64 bytes are all the same value or the two halves
 * are equal (statuses in virtio_guest.h). */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

static struct virtq queue;
static u8 entropy[2][32];

void kernel_main(u32 magic, u32 info) {
    struct virtio_device *d = virtio_guest_start(magic, info, VIRTIO_ID_RNG, VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 1);
    virtio_guest_queue(d, &queue, 0, 8);
    virtio_driver_ok(d);
    int all_interrupted = 1;
    for (int i = 0; i < 2; i++) {
        /* The device may fill less than asked: ask again for the rest. */
        u32 filled = 0, interrupts = irq_device_count;
        while (filled < sizeof entropy[i]) {
            struct virtq_buffer buffer = {entropy[i] + filled, sizeof entropy[i] - filled, 1};
            int length = virtq_transfer(&queue, &buffer, 1, 0);
            if (length <= 0) exit_with(EXIT_IO);
            filled += (u32)length;
        }
        if (!virtio_irq_collect(d, interrupts)) all_interrupted = 0;
        puts("rng: 32 bytes ");
        putbytes(entropy[i], sizeof entropy[i]);
        puts("\n");
    }
    puts(all_interrupted ? "rng: interrupt after each request\n" : "rng: NO interrupt after a request\n");
    int varied = 0;
    for (u32 i = 1; i < sizeof entropy; i++) varied |= ((u8 *)entropy)[i] != entropy[0][0];
    int halves_differ = !bytes_equal(entropy[0], entropy[1], sizeof entropy[0]);
    puts("rng: done\n");
    exit_with(!all_interrupted ? EXIT_IO : varied && halves_differ ? 0 : EXIT_MISMATCH);
}

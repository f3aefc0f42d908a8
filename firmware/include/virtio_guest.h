/* What every virtio guest in firmware/multiboot/ does first: find its device
 * from the command line and the ACPI DSDT (and check that they agree),
 * negotiate features and choose how to wait (polling, or the interrupt when
 * the command line has the word `irq`, or the guest asks for it).
 *
 * Exit statuses shared by the guests:
 *   0 the work was done and checked      3 no such device
 *   4 feature negotiation refused        5 a queue could not be set up
 *   6 a request failed or timed out      7 data read back differs
 *   0x7e an exception (guest_irq.h) */
#ifndef SWIFTVMM_VIRTIO_GUEST_H
#define SWIFTVMM_VIRTIO_GUEST_H

#include "guest_irq.h"
#include "virtio_acpi.h"

#define EXIT_NO_DEVICE 3
#define EXIT_FEATURES 4
#define EXIT_QUEUE 5
#define EXIT_IO 6
#define EXIT_MISMATCH 7

#define VIRTIO_MAX_DEVICES 32
static struct virtio_device virtio_cmdline_devices[VIRTIO_MAX_DEVICES] __attribute__((unused));
static struct virtio_device virtio_acpi_devices[VIRTIO_MAX_DEVICES] __attribute__((unused));

/* Whether the command line has `word` as a whole word. */
static inline int command_line_has(const char *line, const char *word) {
    u32 n = string_length(word);
    for (const char *p = line; *p; p++)
        if ((p == line || p[-1] == ' ') && bytes_equal(p, word, n) && (p[n] == ' ' || p[n] == 0)) return 1;
    return 0;
}

/* The value of `key=` on the command line (up to the next space), or NULL. */
static inline const char *command_line_value(const char *line, const char *key) {
    u32 n = string_length(key);
    for (const char *p = line; *p; p++)
        if ((p == line || p[-1] == ' ') && bytes_equal(p, key, n) && p[n] == '=') return p + n + 1;
    return 0;
}

/* Finds the device with `device_id`, prints what each source described
 * ("virtio: cmdline device at ...", "virtio: acpi device at ...", then
 * "virtio: cmdline and acpi agree" when both describe the same windows and
 * lines in the same order, "... differ" otherwise; the command line's list is
 * the one used when there is one) and begins it with `features`. Installs the interrupt wait when
 * `use_irq` or the command line says `irq`. Ends the guest on failure. */
static inline struct virtio_device *virtio_guest_start(u32 magic, u32 info, u32 device_id, u64 features, int use_irq) {
    if (magic != MULTIBOOT_BOOTLOADER_MAGIC) {
        puts("virtio: not started by a Multiboot loader\n");
        exit_with(2);
    }
    const char *line = multiboot_command_line(info);
    int from_line = virtio_parse_command_line(line, virtio_cmdline_devices, VIRTIO_MAX_DEVICES);
    for (int i = 0; i < from_line; i++) virtio_print_location("cmdline", &virtio_cmdline_devices[i]);
    int from_acpi = virtio_parse_acpi(virtio_acpi_devices, VIRTIO_MAX_DEVICES);
    for (int i = 0; i < from_acpi; i++) virtio_print_location("acpi", &virtio_acpi_devices[i]);
    puts("virtio: ");
    putdec((u32)from_line);
    puts(" on the command line, ");
    putdec((u32)from_acpi);
    puts(" in the DSDT\n");
    if (from_line && from_acpi) {
        int agree = from_line == from_acpi;
        for (int i = 0; agree && i < from_line; i++)
            agree = virtio_cmdline_devices[i].base == virtio_acpi_devices[i].base &&
                    virtio_cmdline_devices[i].irq == virtio_acpi_devices[i].irq &&
                    virtio_cmdline_devices[i].size == virtio_acpi_devices[i].size;
        puts(agree ? "virtio: cmdline and acpi agree\n" : "virtio: cmdline and acpi differ\n");
    }
    struct virtio_device *list = from_line ? virtio_cmdline_devices : virtio_acpi_devices;
    struct virtio_device *d = virtio_find(list, from_line ? from_line : from_acpi, device_id);
    if (!d) {
        puts("virtio: no device with id ");
        putdec(device_id);
        puts("\n");
        exit_with(EXIT_NO_DEVICE);
    }
    u64 offered = virtio_device_features(d);
    if (virtio_begin(d, features) != 0) {
        puts("virtio: feature negotiation failed, offered ");
        puthex(offered, 16);
        puts("\n");
        exit_with(EXIT_FEATURES);
    }
    puts("virtio: offered ");
    puthex(offered, 16);
    puts(" accepted ");
    puthex(d->features, 16);
    puts("\n");
    if (use_irq || command_line_has(line, "irq")) {
        irq_setup(d->irq);
        virtio_wait_hook = virtio_irq_wait_hook;
        puts("virtio: waiting for interrupts on line ");
        putdec(d->irq);
        puts("\n");
    }
    return d;
}

/* Sets up queue `index` or ends the guest. */
static inline void virtio_guest_queue(struct virtio_device *d, struct virtq *q, u16 index, u16 size) {
    if (virtq_setup(d, q, index, size) != 0) {
        puts("virtio: cannot set up queue ");
        putdec(index);
        puts("\n");
        exit_with(EXIT_QUEUE);
    }
}

#endif

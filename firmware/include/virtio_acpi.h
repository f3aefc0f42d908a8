/* Finds virtio-mmio devices the way Linux's ACPI probe does: the RSDP in the
 * BIOS area (0xE0000-0xFFFFF), the XSDT or RSDT, the FADT, its DSDT, and in the DSDT
 * every device whose _HID is "LNRO0005", with the window of its _CRS's
 * Memory32Fixed descriptor and the first line of its Extended Interrupt
 * descriptor.
 *
 * A byte scan rather than an AML interpreter: it looks for the _HID string
 * object (0x0D "LNRO0005" 0) and then, before the next such device, for the
 * two resource descriptors (ACPI 6.5, 6.4.3.4 and 6.4.3.6), which is exactly
 * what a DSDT with static _CRS buffers holds. */
#ifndef SWIFTVMM_VIRTIO_ACPI_H
#define SWIFTVMM_VIRTIO_ACPI_H

#include "virtio_mmio.h"

static inline u32 acpi_u32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }

static inline int acpi_checksum_ok(const u8 *p, u32 length) {
    u8 sum = 0;
    for (u32 i = 0; i < length; i++) sum = (u8)(sum + p[i]);
    return sum == 0;
}

/* The DSDT (and its length), or NULL if any table on the way is missing. */
static inline const u8 *acpi_find_dsdt(u32 *length) {
    const u8 *rsdp = 0;
    for (u32 a = 0xe0000; a < 0x100000; a += 16)
        if (bytes_equal((const void *)(uptr)a, "RSD PTR ", 8) && acpi_checksum_ok((const u8 *)(uptr)a, 20)) {
            rsdp = (const u8 *)(uptr)a;
            break;
        }
    if (!rsdp) return 0;
    /* The XSDT (revision 2, 64-bit entries) where there is one below 4 GiB,
     * else the RSDT (QEMU's microvm has only the former). */
    u32 entry_size = 4;
    const u8 *list = (const u8 *)(uptr)acpi_u32(rsdp + 16);
    if (rsdp[15] >= 2 && acpi_u32(rsdp + 24) && !acpi_u32(rsdp + 28)) {
        list = (const u8 *)(uptr)acpi_u32(rsdp + 24);
        entry_size = 8;
        if (!bytes_equal(list, "XSDT", 4)) return 0;
    } else if (!list || !bytes_equal(list, "RSDT", 4)) {
        return 0;
    }
    u32 entries = (acpi_u32(list + 4) - 36) / entry_size;
    for (u32 i = 0; i < entries; i++) {
        const u8 *table = (const u8 *)(uptr)acpi_u32(list + 36 + entry_size * i);
        if (!bytes_equal(table, "FACP", 4)) continue;
        const u8 *dsdt = (const u8 *)(uptr)acpi_u32(table + 40);
        if (!bytes_equal(dsdt, "DSDT", 4)) return 0;
        *length = acpi_u32(dsdt + 4);
        return dsdt;
    }
    return 0;
}

/* Fills `devices` from the DSDT's LNRO0005 devices; returns how many (0 with no ACPI). */
static inline int virtio_parse_acpi(struct virtio_device *devices, int max) {
    u32 length = 0;
    const u8 *dsdt = acpi_find_dsdt(&length);
    if (!dsdt) return 0;
    static const u8 hid[] = {0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0};
    int count = 0;
    u32 i = 36;
    while (i + sizeof hid <= length && count < max) {
        if (!bytes_equal(dsdt + i, hid, sizeof hid)) {
            i++;
            continue;
        }
        /* This device's resources end where the next LNRO0005 starts. */
        u32 end = i + sizeof hid;
        while (end + sizeof hid <= length && !bytes_equal(dsdt + end, hid, sizeof hid)) end++;
        if (end + sizeof hid > length) end = length;
        struct virtio_device d = {0};
        int have_irq = 0;
        for (u32 j = i + sizeof hid; j + 9 <= end; j++) {
            if (!d.base && dsdt[j] == 0x86 && dsdt[j + 1] == 9 && dsdt[j + 2] == 0 && j + 12 <= end) {
                d.base = acpi_u32(dsdt + j + 4);
                d.size = acpi_u32(dsdt + j + 8);
                j += 11;
            } else if (!have_irq && dsdt[j] == 0x89 && dsdt[j + 2] == 0 && dsdt[j + 1] >= 6 && dsdt[j + 4] >= 1) {
                d.irq = acpi_u32(dsdt + j + 5);
                have_irq = 1;
                j += 8;
            }
        }
        if (d.base && have_irq) devices[count++] = d;
        i = end;
    }
    return count;
}

#endif

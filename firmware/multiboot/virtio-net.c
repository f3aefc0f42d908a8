/* virtio-net (virtio 1.2, 5.1) from a freestanding driver: receiveq 0,
 * transmitq 1, the 12-byte virtio_net_hdr of VERSION_1, no offloads. It talks
 * IPv4 to the host on the other side of the tap:
 *
 *   net: mac 52:54:00:12:34:56 ip 10.0.2.15 host 10.0.2.1    (MAC from config with VIRTIO_NET_F_MAC)
 *   net: arp reply: 10.0.2.1 is at <the host's MAC>         (its ARP request answered)
 *   net: echo reply from 10.0.2.1 seq 1 bytes 32            (an ICMP echo request answered)
 *   net: done
 * Addresses come from the command line (`ip=A.B.C.D host=A.B.C.D`, defaults
 * above). ARP requests for the guest's address are answered on the way.
 * Each request is sent up to 5 times, 1 s apart (10 s at most in all).
 * Ends with 0, or 6 when no answer came (statuses in virtio_guest.h). */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define VIRTIO_NET_F_MAC 5
#define NET_HEADER 12
#define RX_BUFFERS 8
#define FRAME 2048

static struct virtq receive, transmit;
static u8 rx[RX_BUFFERS][FRAME] __attribute__((aligned(4096)));
static u8 tx[FRAME] __attribute__((aligned(16)));
static u8 mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
static u8 host_mac[6];
static u8 ip[4] = {10, 0, 2, 15}, host[4] = {10, 0, 2, 1};
static int have_host_mac, have_echo;

static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8), p[1] = (u8)v; }
static u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }

static u16 checksum(const u8 *p, u32 length) {
    u32 sum = 0;
    for (u32 i = 0; i + 1 < length; i += 2) sum += get16(p + i);
    if (length & 1) sum += (u32)p[length - 1] << 8;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (u16)~sum;
}

static void parse_ip(const char *s, u8 out[4]) {
    if (!s) return;
    for (int i = 0; i < 4; i++) {
        u32 v = 0;
        while (*s >= '0' && *s <= '9') v = v * 10 + (u32)(*s++ - '0');
        out[i] = (u8)v;
        if (*s == '.') s++;
    }
}

static void put_ip(const u8 a[4]) {
    for (int i = 0; i < 4; i++) {
        if (i) putc('.');
        putdec(a[i]);
    }
}
static void put_mac(const u8 m[6]) {
    for (int i = 0; i < 6; i++) {
        if (i) putc(':');
        putbytes(m + i, 1);
    }
}

/* Sends the Ethernet frame in tx + NET_HEADER (its header zeroed here). */
static void send(u32 frame_length) {
    memset(tx, 0, NET_HEADER);
    if (frame_length < 60) {
        memset(tx + NET_HEADER + frame_length, 0, 60 - frame_length);
        frame_length = 60;
    }
    struct virtq_buffer buffer = {tx, NET_HEADER + frame_length, 0};
    if (virtq_transfer(&transmit, &buffer, 1, 0) < 0) exit_with(EXIT_IO);
}

static void send_arp(u16 operation, const u8 *target_mac, const u8 *target_ip) {
    u8 *f = tx + NET_HEADER;
    memcpy(f, operation == 1 ? (const u8 *)"\xff\xff\xff\xff\xff\xff" : target_mac, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, 0x0806);
    u8 *a = f + 14;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6, a[5] = 4;
    put16(a + 6, operation);
    memcpy(a + 8, mac, 6);
    memcpy(a + 14, ip, 4);
    if (operation == 1)
        memset(a + 18, 0, 6);
    else
        memcpy(a + 18, target_mac, 6);
    memcpy(a + 24, target_ip, 4);
    send(14 + 28);
}

static void send_echo(u16 sequence) {
    u8 *f = tx + NET_HEADER;
    memcpy(f, host_mac, 6);
    memcpy(f + 6, mac, 6);
    put16(f + 12, 0x0800);
    u8 *h = f + 14, *icmp = h + 20;
    u32 payload = 24;
    memset(h, 0, 20);
    h[0] = 0x45;
    put16(h + 2, (u16)(20 + 8 + payload));
    put16(h + 4, sequence);
    h[8] = 64;
    h[9] = 1;
    memcpy(h + 12, ip, 4);
    memcpy(h + 16, host, 4);
    put16(h + 10, checksum(h, 20));
    icmp[0] = 8, icmp[1] = 0;
    put16(icmp + 2, 0);
    put16(icmp + 4, 0x5356);
    put16(icmp + 6, sequence);
    memcpy(icmp + 8, "swiftvmm virtio-net ping", payload);
    put16(icmp + 2, checksum(icmp, 8 + payload));
    send(14 + 20 + 8 + payload);
}

static void handle(const u8 *f, u32 length) {
    if (length < 14 + 28) return;
    u16 type = get16(f + 12);
    if (type == 0x0806) {
        const u8 *a = f + 14;
        u16 operation = get16(a + 6);
        if (operation == 2 && bytes_equal(a + 14, host, 4) && !have_host_mac) {
            memcpy(host_mac, a + 8, 6);
            have_host_mac = 1;
            puts("net: arp reply: ");
            put_ip(host);
            puts(" is at ");
            put_mac(host_mac);
            puts("\n");
        } else if (operation == 1 && bytes_equal(a + 24, ip, 4)) {
            u8 asker_mac[6], asker_ip[4];
            memcpy(asker_mac, a + 8, 6);
            memcpy(asker_ip, a + 14, 4);
            send_arp(2, asker_mac, asker_ip);
        }
    } else if (type == 0x0800) {
        const u8 *h = f + 14;
        u32 header = (u32)(h[0] & 15) * 4;
        if (h[9] != 1 || !bytes_equal(h + 12, host, 4) || !bytes_equal(h + 16, ip, 4)) return;
        const u8 *icmp = h + header;
        u32 total = get16(h + 2);
        if (icmp[0] == 0 && get16(icmp + 4) == 0x5356 && !have_echo) {
            have_echo = 1;
            puts("net: echo reply from ");
            put_ip(host);
            puts(" seq ");
            putdec(get16(icmp + 6));
            puts(" bytes ");
            putdec(total - header - 8);
            puts(bytes_equal(icmp + 8, "swiftvmm virtio-net ping", 24) ? "\n" : " (payload differs)\n");
        }
    }
}

/* Handles what arrives for about `cycles` TSC cycles, or until *flag is set. */
static void receive_until(int *flag, u64 cycles) {
    u64 start = rdtsc();
    virtio_wait_cycles = 1ull << 28;
    while (!*flag && rdtsc() - start < cycles) {
        u32 length = 0;
        int head = virtq_wait(&receive, &length);
        if (head < 0) continue;
        u8 *buffer = rx[head % RX_BUFFERS];
        if (length > NET_HEADER) handle(buffer + NET_HEADER, length - NET_HEADER);
        struct virtq_buffer again = {buffer, FRAME, 1};
        virtq_add(&receive, &again, 1, 0);
        virtq_kick(&receive);
    }
}

void kernel_main(u32 magic, u32 info) {
    struct virtio_device *d =
        virtio_guest_start(magic, info, VIRTIO_ID_NET, VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 0);
    const char *line = multiboot_command_line(info);
    parse_ip(command_line_value(line, "ip"), ip);
    parse_ip(command_line_value(line, "host"), host);
    if (virtio_has(d, VIRTIO_NET_F_MAC))
        for (u32 i = 0; i < 6; i++) mac[i] = virtio_config8(d, i);
    virtio_guest_queue(d, &receive, 0, 16);
    virtio_guest_queue(d, &transmit, 1, 16);
    virtio_driver_ok(d);
    puts("net: mac ");
    put_mac(mac);
    puts(" ip ");
    put_ip(ip);
    puts(" host ");
    put_ip(host);
    puts("\n");

    for (int i = 0; i < RX_BUFFERS; i++) {
        struct virtq_buffer buffer = {rx[i], FRAME, 1};
        virtq_add(&receive, &buffer, 1, 0);
    }
    virtq_kick_since(&receive, 0);

    const u64 second = 3400000000ull;
    for (int attempt = 0; attempt < 5 && !have_host_mac; attempt++) {
        send_arp(1, 0, host);
        receive_until(&have_host_mac, second);
    }
    if (!have_host_mac) {
        puts("net: no arp reply\n");
        exit_with(EXIT_IO);
    }
    for (u16 attempt = 1; attempt <= 5 && !have_echo; attempt++) {
        send_echo(attempt);
        receive_until(&have_echo, second);
    }
    if (!have_echo) {
        puts("net: no echo reply\n");
        exit_with(EXIT_IO);
    }
    puts("net: done\n");
    exit_with(0);
}

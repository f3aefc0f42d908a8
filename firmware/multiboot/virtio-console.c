/* virtio-console (virtio 1.2, 5.3) from a freestanding driver: port 0 only
 * (no MULTIPORT), receiveq 0 and transmitq 1; Linux calls this port hvc0.
 *
 * Gives the device four receive buffers and collects bytes until a '\n' (at
 * most 60 kept), then writes "hello from hvc0\n" and "echo: <the line>\n" to
 * port 0. Input comes first so that a host side which drops output while
 * nobody is connected (a Unix-socket back end) loses nothing: the host
 * connects, types, then reads. COM1:
 *   console: waiting for a line on hvc0
 *   console: received '<the line, without its newline>'
 *   console: sent hello and echo
 *   console: done
 * Ends with 0, or 6 if a request failed or no line came (statuses in
 * virtio_guest.h; the wait for input is bounded, 10 s at 3.4 GHz). */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define RX_BUFFERS 4
#define RX_SIZE 64

static struct virtq receive, transmit;
static u8 rx[RX_BUFFERS][RX_SIZE];
static u8 tx[80];
static char line[64];

static void send(const char *text, u32 length) {
    memcpy(tx, text, length);
    struct virtq_buffer buffer = {tx, length, 0};
    if (virtq_transfer(&transmit, &buffer, 1, 0) < 0) exit_with(EXIT_IO);
}

void kernel_main(u32 magic, u32 info) {
    struct virtio_device *d = virtio_guest_start(magic, info, VIRTIO_ID_CONSOLE, VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 0);
    virtio_guest_queue(d, &receive, 0, 8);
    virtio_guest_queue(d, &transmit, 1, 8);
    virtio_driver_ok(d);

    puts("console: waiting for a line on hvc0\n");
    u16 before = receive.avail_shadow;
    for (int i = 0; i < RX_BUFFERS; i++) {
        struct virtq_buffer buffer = {rx[i], RX_SIZE, 1};
        virtq_add(&receive, &buffer, 1, 0);
    }
    virtq_kick_since(&receive, before);

    u32 length = 0;
    int complete = 0;
    while (!complete) {
        u32 got = 0;
        int head = virtq_wait(&receive, &got);
        if (head < 0) {
            puts("console: no line arrived\n");
            exit_with(EXIT_IO);
        }
        /* Which buffer came back: heads were handed out in order from 0. */
        u8 *data = rx[head % RX_BUFFERS];
        for (u32 i = 0; i < got && i < RX_SIZE && !complete; i++) {
            if (data[i] == '\n' || data[i] == '\r')
                complete = 1;
            else if (length < 60)
                line[length++] = (char)data[i];
        }
        struct virtq_buffer buffer = {data, RX_SIZE, 1};
        virtq_add(&receive, &buffer, 1, 0);
        virtq_kick(&receive);
    }
    puts("console: received ");
    putquoted((const u8 *)line, length);
    puts("\n");

    static const char hello[] = "hello from hvc0\n";
    send(hello, sizeof hello - 1);
    static char echo[80] = "echo: ";
    memcpy(echo + 6, line, length);
    echo[6 + length] = '\n';
    send(echo, 7 + length);
    puts("console: sent hello and echo\n");
    puts("console: done\n");
    exit_with(0);
}

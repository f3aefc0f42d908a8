/* virtio-vsock (virtio 1.2, 5.10) from a freestanding driver: rx 0, tx 1,
 * event 2; stream sockets with credit-based flow control.
 *
 * 1. Listens on port 1234 (`listen=N` on the command line): accepts the
 *    host's connection (OP_REQUEST, answered with OP_RESPONSE), echoes every
 *    byte it receives back to the host until it has echoed a '\n', then
 *    shuts the connection down (OP_SHUTDOWN) and waits for the host's RST.
 * 2. With `connect=P` on the command line, connects to the host (CID 2)
 *    port P, sends "hello from the guest\n", prints the line that comes back,
 *    and shuts down.
 *   vsock: guest cid N
 *   vsock: listening on port 1234
 *   vsock: connection from cid 2 port P
 *   vsock: echoed '<the line>'
 *   vsock: closed
 *   vsock: connected to cid 2 port P          (2.)
 *   vsock: received '<the line>'              (2.)
 *   vsock: closed                             (2.)
 *   vsock: done
 * Ends with 0, or 6 when the host does not answer in time (statuses in virtio_guest.h). */
#include "virtio_guest.h"

MULTIBOOT_GUEST(8192)

#define VIRTIO_VSOCK_F_STREAM 0 /* 1.2; a device without it acts as if it were negotiated */
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define HOST_CID 2
#define BUFFER_SPACE 65536
#define RX_BUFFERS 8
#define RX_SIZE 4096

struct __attribute__((packed)) vsock_header {
    u64 src_cid;
    u64 dst_cid;
    u32 src_port;
    u32 dst_port;
    u32 len;
    u16 type;
    u16 op;
    u32 flags;
    u32 buf_alloc;
    u32 fwd_cnt;
};

static struct virtq receive, transmit, events;
static u8 rx[RX_BUFFERS][RX_SIZE] __attribute__((aligned(4096)));
static u8 event_buffer[8];
static u8 tx[sizeof(struct vsock_header) + 128];
static u64 guest_cid;

/* The one connection: its ports, our consumed-byte count, the peer's credit. */
static struct {
    u32 local_port, peer_port;
    u32 forwarded, peer_buffer, peer_forwarded, sent;
    int open, peer_closed;
} connection;

static void send(u16 op, u32 flags, const void *data, u32 length) {
    struct vsock_header *h = (struct vsock_header *)tx;
    memset(h, 0, sizeof *h);
    h->src_cid = guest_cid;
    h->dst_cid = HOST_CID;
    h->src_port = connection.local_port;
    h->dst_port = connection.peer_port;
    h->len = length;
    h->type = 1; /* stream */
    h->op = op;
    h->flags = flags;
    h->buf_alloc = BUFFER_SPACE;
    h->fwd_cnt = connection.forwarded;
    if (length) memcpy(tx + sizeof *h, data, length);
    struct virtq_buffer buffer = {tx, sizeof *h + length, 0};
    if (virtq_transfer(&transmit, &buffer, 1, 0) < 0) exit_with(EXIT_IO);
    connection.sent += length;
}

/* Takes the next packet from rx (waiting, bounded); copies its payload to
 * `data` (up to `room`), returns the header by value. op 0: nothing came. */
static struct vsock_header next_packet(u8 *data, u32 room, u32 *copied) {
    struct vsock_header h = {0};
    u32 length = 0;
    int head = virtq_wait(&receive, &length);
    *copied = 0;
    if (head < 0) return h;
    u8 *buffer = rx[head % RX_BUFFERS];
    if (length >= sizeof h) {
        memcpy(&h, buffer, sizeof h);
        u32 payload = h.len < length - sizeof h ? h.len : length - sizeof h;
        *copied = payload < room ? payload : room;
        if (data) memcpy(data, buffer + sizeof h, *copied);
    }
    struct virtq_buffer again = {buffer, RX_SIZE, 1};
    virtq_add(&receive, &again, 1, 0);
    virtq_kick(&receive);
    return h;
}

/* Handles the control side of a packet on the connection; 1 if it was RW data. */
static int track(const struct vsock_header *h) {
    connection.peer_buffer = h->buf_alloc;
    connection.peer_forwarded = h->fwd_cnt;
    if (h->op == OP_CREDIT_REQUEST) send(OP_CREDIT_UPDATE, 0, 0, 0);
    if (h->op == OP_SHUTDOWN || h->op == OP_RST) connection.peer_closed = 1;
    return h->op == OP_RW;
}

/* Whether a packet belongs to the connection. */
static int ours(const struct vsock_header *h) {
    return h->dst_port == connection.local_port && h->src_port == connection.peer_port;
}

/* Shuts the connection down and waits (about 2 s at most) for the peer's RST. */
static void close_connection(void) {
    send(OP_SHUTDOWN, 3, 0, 0);
    u64 saved = virtio_wait_cycles;
    virtio_wait_cycles = 1ull << 32;
    for (int i = 0; i < 16; i++) {
        u32 n;
        struct vsock_header h = next_packet(0, 0, &n);
        if (h.op == 0 || (h.op == OP_RST && ours(&h))) break;
    }
    virtio_wait_cycles = saved;
    connection.open = 0;
    puts("vsock: closed\n");
}

/* Waits until the peer's credit takes `length` more bytes, asking for an
 * update if it does not; 0 if none comes. */
static int wait_for_credit(u32 length) {
    for (int i = 0; i < 16; i++) {
        if (connection.peer_buffer - (connection.sent - connection.peer_forwarded) >= length) return 1;
        if (i == 0) send(OP_CREDIT_REQUEST, 0, 0, 0);
        u32 n;
        struct vsock_header h = next_packet(0, 0, &n);
        if (h.op == 0) return 0;
        if (ours(&h)) track(&h);
    }
    return 0;
}

static u8 line[128];

void kernel_main(u32 magic, u32 info) {
    struct virtio_device *d = virtio_guest_start(magic, info, VIRTIO_ID_VSOCK, VIRTIO_BIT(VIRTIO_VSOCK_F_STREAM) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), 0);
    const char *command_line = multiboot_command_line(info);
    const char *listen = command_line_value(command_line, "listen"), *connect = command_line_value(command_line, "connect");
    u32 port = listen ? (u32)virtio_parse_number(&listen) : 1234;
    guest_cid = virtio_config64(d, 0);
    virtio_guest_queue(d, &receive, 0, 16);
    virtio_guest_queue(d, &transmit, 1, 16);
    virtio_guest_queue(d, &events, 2, 4);
    virtio_driver_ok(d);
    for (int i = 0; i < RX_BUFFERS; i++) {
        struct virtq_buffer buffer = {rx[i], RX_SIZE, 1};
        virtq_add(&receive, &buffer, 1, 0);
    }
    virtq_kick_since(&receive, 0);
    struct virtq_buffer event = {event_buffer, sizeof event_buffer, 1};
    virtq_add(&events, &event, 1, 0);
    virtq_kick(&events);
    puts("vsock: guest cid ");
    putdec((u32)guest_cid);
    puts("\nvsock: listening on port ");
    putdec(port);
    puts("\n");

    /* 1. The host connects; echo one line. */
    while (!connection.open) {
        u32 n;
        struct vsock_header h = next_packet(0, 0, &n);
        if (h.op == 0) {
            puts("vsock: no connection came\n");
            exit_with(EXIT_IO);
        }
        if (h.op == OP_REQUEST && h.dst_port == port) {
            connection.local_port = port;
            connection.peer_port = h.src_port;
            track(&h);
            send(OP_RESPONSE, 0, 0, 0);
            connection.open = 1;
            puts("vsock: connection from cid ");
            putdec((u32)h.src_cid);
            puts(" port ");
            putdec(h.src_port);
            puts("\n");
        } else if (h.op != OP_RST) {
            /* Anything else to a port nobody listens on is refused. */
            u32 saved_local = connection.local_port, saved_peer = connection.peer_port;
            connection.local_port = h.dst_port;
            connection.peer_port = h.src_port;
            send(OP_RST, 0, 0, 0);
            connection.local_port = saved_local;
            connection.peer_port = saved_peer;
        }
    }
    u32 length = 0;
    int newline = 0;
    while (!newline && !connection.peer_closed) {
        u8 chunk[128];
        u32 n;
        struct vsock_header h = next_packet(chunk, sizeof chunk, &n);
        if (h.op == 0) {
            puts("vsock: no data came\n");
            exit_with(EXIT_IO);
        }
        if (!ours(&h) || !track(&h) || n == 0) continue;
        connection.forwarded += h.len;
        for (u32 i = 0; i < n; i++) {
            if (chunk[i] == '\n') newline = 1;
            else if (length < sizeof line) line[length++] = chunk[i];
        }
        /* Echo within the peer's credit: buf_alloc - (sent - fwd_cnt). */
        if (!wait_for_credit(n)) {
            puts("vsock: the host gives no credit\n");
            exit_with(EXIT_IO);
        }
        send(OP_RW, 0, chunk, n);
    }
    puts("vsock: echoed ");
    putquoted(line, length);
    puts("\n");
    close_connection();

    /* 2. Connect to the host. */
    if (connect) {
        memset(&connection, 0, sizeof connection);
        connection.local_port = 49152;
        connection.peer_port = (u32)virtio_parse_number(&connect);
        send(OP_REQUEST, 0, 0, 0);
        struct vsock_header h;
        u32 n;
        do h = next_packet(0, 0, &n);
        while (h.op != 0 && !(ours(&h) && (h.op == OP_RESPONSE || h.op == OP_RST)));
        if (h.op != OP_RESPONSE) {
            puts(h.op == OP_RST ? "vsock: connection refused\n" : "vsock: no answer to the connection request\n");
            exit_with(EXIT_IO);
        }
        track(&h);
        connection.open = 1;
        puts("vsock: connected to cid 2 port ");
        putdec(connection.peer_port);
        puts("\n");
        static const char hello[] = "hello from the guest\n";
        if (!wait_for_credit(sizeof hello - 1)) {
            puts("vsock: the host gives no credit\n");
            exit_with(EXIT_IO);
        }
        send(OP_RW, 0, hello, sizeof hello - 1);
        length = 0;
        newline = 0;
        while (!newline && !connection.peer_closed) {
            u8 chunk[128];
            h = next_packet(chunk, sizeof chunk, &n);
            if (h.op == 0) {
                puts("vsock: no reply came\n");
                exit_with(EXIT_IO);
            }
            if (!ours(&h) || !track(&h)) continue;
            connection.forwarded += h.len;
            for (u32 i = 0; i < n; i++) {
                if (chunk[i] == '\n') newline = 1;
                else if (length < sizeof line) line[length++] = chunk[i];
            }
        }
        puts("vsock: received ");
        putquoted(line, length);
        puts("\n");
        close_connection();
    }
    puts("vsock: done\n");
    exit_with(0);
}

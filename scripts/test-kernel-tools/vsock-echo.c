/* A vsock tool for the Linux test kernel's busybox shell, which has none:
 * built static by LinuxVirtioDriverTests and added to the initramfs.
 *
 *   vsock-echo listen PORT        accept one connection on PORT, echo what it
 *                                 sends until it closes, print "echoed N"
 *   vsock-echo connect CID PORT TEXT
 *                                 connect to CID:PORT, send TEXT, close the
 *                                 sending side, print what comes back
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/vm_sockets.h>

static int fail(const char *what) {
    perror(what);
    return 1;
}

static int listen_once(unsigned port) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) return fail("socket");
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(s, (struct sockaddr *)&addr, sizeof addr) < 0) return fail("bind");
    if (listen(s, 1) < 0) return fail("listen");
    printf("listening on %u\n", port);
    fflush(stdout);
    int c = accept(s, NULL, NULL);
    if (c < 0) return fail("accept");
    char buffer[4096];
    long total = 0;
    for (;;) {
        ssize_t n = read(c, buffer, sizeof buffer);
        if (n < 0) return fail("read");
        if (n == 0) break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(c, buffer + done, n - done);
            if (w < 0) return fail("write");
            done += w;
        }
        total += n;
    }
    close(c);
    printf("echoed %ld\n", total);
    return 0;
}

static int connect_once(unsigned cid, unsigned port, const char *text) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) return fail("socket");
    struct sockaddr_vm addr = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
    if (connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) return fail("connect");
    size_t length = strlen(text);
    for (size_t done = 0; done < length;) {
        ssize_t w = write(s, text + done, length - done);
        if (w < 0) return fail("write");
        done += w;
    }
    shutdown(s, SHUT_WR);
    char buffer[4096];
    printf("reply: ");
    for (;;) {
        ssize_t n = read(s, buffer, sizeof buffer);
        if (n < 0) return fail("read");
        if (n == 0) break;
        fwrite(buffer, 1, n, stdout);
    }
    printf("\nend of reply\n");
    close(s);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "listen") == 0) return listen_once(strtoul(argv[2], NULL, 10));
    if (argc == 5 && strcmp(argv[1], "connect") == 0)
        return connect_once(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), argv[4]);
    fprintf(stderr, "usage: vsock-echo listen PORT | connect CID PORT TEXT\n");
    return 64;
}

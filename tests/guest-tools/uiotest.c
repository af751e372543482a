/* Guest-side INTx test for a PCI function bound to Linux's uio_pci_generic driver: the
 * function is QEMU's "edu" device (1234:11e8), which raises its interrupt when its
 * raise register (BAR0 + 0x60) is written and lowers it when acknowledged (BAR0 + 0x64).
 * uio_pci_generic masks INTx with the Interrupt Disable bit in its handler; user space
 * unmasks it by clearing that bit (command register bit 10) through the sysfs config file,
 * as the kernel's UIO howto shows for this driver.
 *
 * usage: uiotest irqs PCIDEV UIODEV COUNT   raise, wait, acknowledge COUNT times
 *        uiotest reroute PCIDEV UIODEV     with the interrupt pending, disable the device's
 *                                          PIIX3 PIRQ route (00:01.0 config 0x60 + pirq):
 *                                          no interrupt may arrive; restore the route: it must
 * PCIDEV is e.g. 0000:00:02.0, UIODEV e.g. /dev/uio0. Prints one line per step. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile uint32_t *bar;

static void w32(unsigned off, uint32_t v) { bar[off / 4] = v; }
static uint32_t r32(unsigned off) { return bar[off / 4]; }

/* Waits up to ms for an interrupt; returns the uio event count, 0 on timeout, -1 on error. */
static long wait_irq(int uio, int ms) {
    struct pollfd p = {.fd = uio, .events = POLLIN};
    int n = poll(&p, 1, ms);
    if (n < 0) return -1;
    if (n == 0) return 0;
    uint32_t count;
    if (read(uio, &count, 4) != 4) return -1;
    return count;
}

static const char *pcidev;
static int cfg_byte(const char *dev, unsigned off, int write_value);

/* Clears Interrupt Disable (command bit 10 = bit 2 of config byte 5). */
static int unmask(int uio) {
    (void)uio;
    int hi = cfg_byte(pcidev, 5, -1);
    if (hi < 0) return -1;
    return cfg_byte(pcidev, 5, hi & ~0x4) < 0 ? -1 : 0;
}

static int cfg_byte(const char *dev, unsigned off, int write_value) {
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", dev);
    int fd = open(path, O_RDWR);
    if (fd < 0) return -1;
    unsigned char b;
    int r;
    if (write_value >= 0) {
        b = (unsigned char)write_value;
        r = pwrite(fd, &b, 1, off) == 1 ? write_value : -1;
    } else {
        r = pread(fd, &b, 1, off) == 1 ? b : -1;
    }
    close(fd);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: uiotest irqs|reroute PCIDEV UIODEV [COUNT]\n");
        return 2;
    }
    const char *dev = argv[2];
    pcidev = dev;
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", dev);
    int rfd = open(path, O_RDWR | O_SYNC);
    if (rfd < 0) { perror(path); return 1; }
    bar = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    if (bar == MAP_FAILED) { perror("mmap resource0"); return 1; }
    int uio = open(argv[3], O_RDWR);
    if (uio < 0) { perror(argv[3]); return 1; }
    printf("uiotest ident=%08x\n", r32(0));

    if (!strcmp(argv[1], "irqs")) {
        int count = argc > 4 ? atoi(argv[4]) : 5, got = 0;
        for (int i = 0; i < count; i++) {
            w32(0x60, 1u << (i % 32));
            long ev = wait_irq(uio, 5000);
            uint32_t status = r32(0x24);
            w32(0x64, 0xffffffff);
            if (unmask(uio)) { perror("unmask"); return 1; }
            if (ev > 0) got++;
            printf("uiotest irq %d events=%ld status=%08x\n", i, ev, status);
        }
        printf("uiotest irqs received=%d of %d\n", got, count);
        return got == count ? 0 : 1;
    }
    if (!strcmp(argv[1], "reroute")) {
        /* The device's PIRQ: QEMU's pc board (and ours on KVM) rotates pin P (1-4) of slot S
         * onto PIRQ (S - 1 + P - 1) mod 4. */
        unsigned slot = strtoul(dev + 8, NULL, 16);
        int pin = cfg_byte(dev, 0x3d, -1);
        unsigned pirq = (slot + pin + 2) % 4;
        int route = cfg_byte("0000:00:01.0", 0x60 + pirq, -1);
        printf("uiotest pirq=%c route=%d\n", 'A' + pirq, route);
        if (route < 0 || (route & 0x80)) { printf("uiotest reroute: PIRQ not routed\n"); return 1; }
        cfg_byte("0000:00:01.0", 0x60 + pirq, 0x80); /* routing disabled */
        w32(0x60, 0x40);
        unmask(uio);
        long ev = wait_irq(uio, 1500);
        printf("uiotest reroute off events=%ld\n", ev);
        cfg_byte("0000:00:01.0", 0x60 + pirq, route); /* back: the pending request arrives */
        long ev2 = wait_irq(uio, 5000);
        printf("uiotest reroute on events=%ld status=%08x\n", ev2, r32(0x24));
        w32(0x64, 0xffffffff);
        unmask(uio);
        int ok = ev == 0 && ev2 > 0;
        printf("uiotest reroute %s\n", ok ? "ok" : "FAILED");
        return ok ? 0 : 1;
    }
    return 2;
}

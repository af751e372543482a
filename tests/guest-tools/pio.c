/* Guest-side exit-cost probe: reads one I/O port N times through /dev/port (a kernel `inb` per
 * read, so every read is one port-I/O exit to the device model) and prints the mean cost.
 * usage: pio COUNT [PORT]   (PORT defaults to 0x64, the i8042 status register) */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    long count = argc > 1 ? strtol(argv[1], NULL, 0) : 1000;
    long port = argc > 2 ? strtol(argv[2], NULL, 0) : 0x64;
    int fd = open("/dev/port", O_RDONLY);
    if (fd < 0 || count <= 0) {
        perror("pio: /dev/port");
        return 1;
    }
    unsigned char b;
    /* warm up: fault in the page cache paths and the device model's code */
    for (int i = 0; i < 100; i++) pread(fd, &b, 1, port);
    double t0 = now_us();
    for (long i = 0; i < count; i++) {
        if (pread(fd, &b, 1, port) != 1) {
            perror("pio: pread");
            return 1;
        }
    }
    double t1 = now_us();
    printf("PIO-COST port=%#lx count=%ld us_per_exit=%.2f\n", port, count, (t1 - t0) / count);
    return 0;
}

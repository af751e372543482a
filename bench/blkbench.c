/* Guest-side block benchmark with O_DIRECT (no guest page cache):
 *   blkbench DEV seq MAXMB      sequential 1 MiB reads from the start, prints MB/s
 *   blkbench DEV rand SECONDS   random 4 KiB reads, prints reads per second */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: blkbench DEV seq MAXMB | rand SECONDS\n"); return 2; }
    int fd = open(argv[1], O_RDONLY | O_DIRECT);
    if (fd < 0) { perror(argv[1]); return 1; }
    unsigned long long size = 0;
    if (ioctl(fd, BLKGETSIZE64, &size) < 0 || size < 4096) { perror("BLKGETSIZE64"); return 1; }
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20)) return 1;
    if (!strcmp(argv[2], "seq")) {
        unsigned long long max = strtoull(argv[3], 0, 0) << 20, done = 0;
        if (max > size) max = size & ~((1ULL << 20) - 1);
        double t0 = now();
        while (done < max) {
            ssize_t n = pread(fd, buf, 1 << 20, done);
            if (n <= 0) { perror("pread"); return 1; }
            done += n;
        }
        double t = now() - t0;
        printf("BLK %s seq_mb_s=%.2f bytes=%llu secs=%.2f\n", argv[1], done / t / 1e6, done, t);
    } else {
        double secs = atof(argv[3]), t0 = now(), t;
        unsigned long long blocks = size / 4096, n = 0, x = 88172645463325252ULL;
        do {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            if (pread(fd, buf, 4096, (x % blocks) * 4096) != 4096) { perror("pread"); return 1; }
            n++;
            t = now() - t0;
        } while (t < secs);
        printf("BLK %s rand4k_iops=%.0f reads=%llu secs=%.2f\n", argv[1], n / t, n, t);
    }
    return 0;
}

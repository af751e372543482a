/* Guest-side CD-ROM control through the Linux cdrom ioctls (busybox has no eject/blkid).
 * Every command opens DEV with O_NONBLOCK, which works with an open tray or no medium.
 *   cdctl status DEV                 print "cd-status DISC_OK|TRAY_OPEN|NO_DISC|NOT_READY|NO_INFO"
 *   cdctl wait DEV STATUS SECS       poll (10 Hz) until the status is STATUS; exit 1 on timeout
 *   cdctl eject DEV | close DEV      CDROMEJECT / CDROMCLOSETRAY
 *   cdctl lock DEV 0|1               CDROM_LOCKDOOR (1 keeps the door locked after close)
 *   cdctl label DEV                  read the ISO 9660 primary volume descriptor (sector 16)
 *                                    with O_DIRECT and print "cd-label <volume id>"
 *   cdctl waitlabel DEV OLD SECS     poll (~3 Hz) until a readable label differs from OLD; print it
 * Exit status 0 on success; errors are printed as "cdctl: <what>: <strerror>". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* From <linux/cdrom.h> (stable kernel ABI), spelled out so that musl-gcc, which has no kernel
 * headers, can build this. */
#define CDROMEJECT 0x5309
#define CDROMCLOSETRAY 0x5319
#define CDROM_DRIVE_STATUS 0x5326
#define CDROM_LOCKDOOR 0x5329
#define CDSL_CURRENT INT_MAX
enum { CDS_NO_INFO, CDS_NO_DISC, CDS_TRAY_OPEN, CDS_DRIVE_NOT_READY, CDS_DISC_OK };

static int open_dev(const char *dev, int extra) {
    int fd = open(dev, O_RDONLY | O_NONBLOCK | extra);
    if (fd < 0) fprintf(stderr, "cdctl: open %s: %s\n", dev, strerror(errno));
    return fd;
}

static const char *status_name(int s) {
    switch (s) {
    case CDS_NO_INFO: return "NO_INFO";
    case CDS_NO_DISC: return "NO_DISC";
    case CDS_TRAY_OPEN: return "TRAY_OPEN";
    case CDS_DRIVE_NOT_READY: return "NOT_READY";
    case CDS_DISC_OK: return "DISC_OK";
    default: return "UNKNOWN";
    }
}

static int drive_status(const char *dev) {
    int fd = open_dev(dev, 0);
    if (fd < 0) return -1;
    int s = ioctl(fd, CDROM_DRIVE_STATUS, CDSL_CURRENT);
    if (s < 0) fprintf(stderr, "cdctl: CDROM_DRIVE_STATUS: %s\n", strerror(errno));
    close(fd);
    return s;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Returns 0 and fills out[33] with the trimmed volume id, or -1 (errno-style message printed
 * only when verbose). */
static int read_label(const char *dev, char *out, int verbose) {
    int fd = open_dev(dev, O_DIRECT);
    if (fd < 0) return -1;
    unsigned char *buf;
    if (posix_memalign((void **)&buf, 4096, 2048)) { close(fd); return -1; }
    ssize_t n = pread(fd, buf, 2048, 16 * 2048);
    int err = errno;
    close(fd);
    if (n != 2048) {
        if (verbose) fprintf(stderr, "cdctl: read sector 16: %s\n", n < 0 ? strerror(err) : "short read");
        free(buf);
        return -1;
    }
    if (buf[0] != 1 || memcmp(buf + 1, "CD001", 5) != 0) {
        if (verbose) fprintf(stderr, "cdctl: sector 16 is not an ISO 9660 primary volume descriptor\n");
        free(buf);
        return -1;
    }
    memcpy(out, buf + 40, 32);
    out[32] = 0;
    for (int i = 31; i >= 0 && out[i] == ' '; i--) out[i] = 0;
    free(buf);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: cdctl status|wait|eject|close|lock|label|waitlabel DEV [ARGS]\n");
        return 2;
    }
    const char *cmd = argv[1], *dev = argv[2];
    if (!strcmp(cmd, "status")) {
        int s = drive_status(dev);
        if (s < 0) return 1;
        printf("cd-status %s\n", status_name(s));
        return 0;
    }
    if (!strcmp(cmd, "wait") && argc == 5) {
        double end = now() + atof(argv[4]);
        int s = -1;
        do {
            s = drive_status(dev);
            if (s >= 0 && !strcmp(status_name(s), argv[3])) {
                printf("cd-status %s\n", argv[3]);
                return 0;
            }
            usleep(100000);
        } while (now() < end);
        printf("cd-status timeout waiting for %s (last %s)\n", argv[3], s < 0 ? "error" : status_name(s));
        return 1;
    }
    if (!strcmp(cmd, "eject") || !strcmp(cmd, "close")) {
        int fd = open_dev(dev, 0);
        if (fd < 0) return 1;
        unsigned long req = !strcmp(cmd, "eject") ? CDROMEJECT : CDROMCLOSETRAY;
        if (ioctl(fd, req, 0) < 0) {
            fprintf(stderr, "cdctl: %s: %s\n", cmd, strerror(errno));
            close(fd);
            return 1;
        }
        close(fd);
        return 0;
    }
    if (!strcmp(cmd, "lock") && argc == 4) {
        int fd = open_dev(dev, 0);
        if (fd < 0) return 1;
        if (ioctl(fd, CDROM_LOCKDOOR, atoi(argv[3])) < 0) {
            fprintf(stderr, "cdctl: lock %s: %s\n", argv[3], strerror(errno));
            close(fd);
            return 1;
        }
        close(fd);
        return 0;
    }
    if (!strcmp(cmd, "label")) {
        char l[33];
        if (read_label(dev, l, 1)) return 1;
        printf("cd-label %s\n", l);
        return 0;
    }
    if (!strcmp(cmd, "waitlabel") && argc == 5) {
        double end = now() + atof(argv[4]);
        char l[33];
        do {
            if (read_label(dev, l, 0) == 0 && strcmp(l, argv[3]) != 0) {
                printf("cd-label %s\n", l);
                return 0;
            }
            usleep(300000);
        } while (now() < end);
        printf("cd-label timeout: still %s after %ss\n", argv[3], argv[4]);
        return 1;
    }
    fprintf(stderr, "cdctl: unknown command or wrong arguments: %s\n", cmd);
    return 2;
}

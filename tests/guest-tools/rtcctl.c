/* Guest-side RTC check through /dev/rtc0 (rtc-cmos, IRQ 8): the date, then update, alarm and
 * periodic interrupts, each with a deadline so that a missing interrupt fails instead of hanging.
 * Prints one line per check: "RTC-<CHECK>-OK ..." or "RTC-<CHECK>-FAIL ...".
 * Linux's RTC core builds update interrupts (UIE) on the alarm, so UIE and AIE both exercise the
 * device's alarm interrupt; PIE is an hrtimer in the core and checks only the ioctl path.
 * usage: rtcctl [DEVICE]   (default /dev/rtc0) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

/* From <linux/rtc.h> (stable kernel ABI; x86-64 sizes), spelled out so that musl-gcc, which has
 * no kernel headers, can build this. */
struct rtc_time {
    int tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_wday, tm_yday, tm_isdst;
};
#define RTC_AIE_ON 0x7001
#define RTC_AIE_OFF 0x7002
#define RTC_UIE_ON 0x7003
#define RTC_UIE_OFF 0x7004
#define RTC_PIE_ON 0x7005
#define RTC_PIE_OFF 0x7006
#define RTC_ALM_SET 0x40247007   /* _IOW('p', 0x07, struct rtc_time) */
#define RTC_RD_TIME 0x80247009   /* _IOR('p', 0x09, struct rtc_time) */
#define RTC_IRQP_SET 0x4008700c  /* _IOW('p', 0x0c, unsigned long) */
#define RTC_PF 0x40
#define RTC_AF 0x20
#define RTC_UF 0x10

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Waits up to `secs` for one interrupt report; returns the data word, or 0 on timeout/error. */
static unsigned long wait_irq(int fd, double secs) {
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(fd, &rd);
    struct timeval tv = {(long)secs, (long)((secs - (long)secs) * 1e6)};
    if (select(fd + 1, &rd, NULL, NULL, &tv) != 1) return 0;
    unsigned long data = 0;
    if (read(fd, &data, sizeof data) != sizeof data) return 0;
    return data;
}

static int check_time(int fd) {
    struct rtc_time t;
    if (ioctl(fd, RTC_RD_TIME, &t) < 0) {
        printf("RTC-TIME-FAIL RTC_RD_TIME: %s\n", strerror(errno));
        return 1;
    }
    /* The kernel set its clock from the RTC at boot (RTC_HCTOSYS): both must agree. */
    struct tm tm = {.tm_sec = t.tm_sec, .tm_min = t.tm_min, .tm_hour = t.tm_hour,
                    .tm_mday = t.tm_mday, .tm_mon = t.tm_mon, .tm_year = t.tm_year};
    long rtc = (long)timegm(&tm), sys = (long)time(NULL), diff = rtc - sys;
    int sane = t.tm_year + 1900 >= 2020 && t.tm_year + 1900 < 2100 && diff >= -3 && diff <= 3;
    printf("RTC-TIME-%s %04d-%02d-%02d %02d:%02d:%02d rtc-sys=%lds\n", sane ? "OK" : "FAIL",
           t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, diff);
    return !sane;
}

static int check_uie(int fd) {
    if (ioctl(fd, RTC_UIE_ON, 0) < 0) {
        printf("RTC-UIE-FAIL RTC_UIE_ON: %s\n", strerror(errno));
        return 1;
    }
    int n = 0;
    double t0 = 0, t1 = 0;
    for (int i = 0; i < 4; i++) {
        unsigned long d = wait_irq(fd, 3.0);
        if (!(d & RTC_UF)) break;
        if (i == 0) t0 = now_s();
        t1 = now_s();
        n++;
    }
    ioctl(fd, RTC_UIE_OFF, 0);
    /* 3 intervals between 4 interrupts: about 3 s. */
    double span = t1 - t0;
    int ok = n == 4 && span > 2.5 && span < 3.5;
    printf("RTC-UIE-%s n=%d span=%.2fs\n", ok ? "OK" : "FAIL", n, span);
    return !ok;
}

static int check_alarm(int fd) {
    struct rtc_time t;
    if (ioctl(fd, RTC_RD_TIME, &t) < 0) return 1;
    struct tm tm = {.tm_sec = t.tm_sec, .tm_min = t.tm_min, .tm_hour = t.tm_hour,
                    .tm_mday = t.tm_mday, .tm_mon = t.tm_mon, .tm_year = t.tm_year};
    time_t at = timegm(&tm) + 2;
    struct tm a;
    gmtime_r(&at, &a);
    struct rtc_time alarm = {.tm_sec = a.tm_sec, .tm_min = a.tm_min, .tm_hour = a.tm_hour,
                             .tm_mday = -1, .tm_mon = -1, .tm_year = -1};
    if (ioctl(fd, RTC_ALM_SET, &alarm) < 0 || ioctl(fd, RTC_AIE_ON, 0) < 0) {
        printf("RTC-ALARM-FAIL set: %s\n", strerror(errno));
        return 1;
    }
    double t0 = now_s();
    unsigned long d = wait_irq(fd, 5.0);
    double waited = now_s() - t0;
    ioctl(fd, RTC_AIE_OFF, 0);
    /* Two seconds from a time read somewhere inside its second: 1 to 2 s, plus slack. */
    int ok = (d & RTC_AF) && waited > 0.8 && waited < 3.0;
    printf("RTC-ALARM-%s waited=%.2fs\n", ok ? "OK" : "FAIL", waited);
    return !ok;
}

static int check_pie(int fd) {
    if (ioctl(fd, RTC_IRQP_SET, 64) < 0 || ioctl(fd, RTC_PIE_ON, 0) < 0) {
        printf("RTC-PIE-FAIL on: %s\n", strerror(errno));
        return 1;
    }
    double t0 = now_s();
    unsigned long total = 0;
    while (total < 64) {
        unsigned long d = wait_irq(fd, 2.0);
        if (!(d & RTC_PF)) break;
        total += d >> 8; /* the count of interrupts since the last read */
    }
    double span = now_s() - t0;
    ioctl(fd, RTC_PIE_OFF, 0);
    int ok = total >= 64 && span > 0.5 && span < 3.0;
    printf("RTC-PIE-%s n=%lu span=%.2fs\n", ok ? "OK" : "FAIL", total, span);
    return !ok;
}

int main(int argc, char **argv) {
    const char *dev = argc > 1 ? argv[1] : "/dev/rtc0";
    int fd = open(dev, O_RDONLY);
    if (fd < 0) {
        printf("RTC-OPEN-FAIL %s: %s\n", dev, strerror(errno));
        return 1;
    }
    int bad = check_time(fd);
    bad |= check_uie(fd);
    bad |= check_alarm(fd);
    bad |= check_pie(fd);
    close(fd);
    return bad;
}

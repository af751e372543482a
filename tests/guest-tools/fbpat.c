/* fbpat: framebuffer test patterns for the display scenarios (L3 guest tool).
 *
 *   fbpat info [FB]               geometry of /dev/fb0 (or FB): FBPAT info id=... xres= yres= bpp= stride=
 *   fbpat fill SEED [FB]          writes the test pattern over the visible area (mmap, msync, fsync)
 *   fbpat drm W H SEED SECS       DRM mode set on /dev/dri/card0: a W x H XRGB8888 dumb buffer with the
 *                                 pattern on the first connected connector, held SECS seconds (then the
 *                                 process exits and fbcon restores its own mode)
 *   fbpat drmloop W H SEED SECS   the same, redrawing the whole screen (next seed) as fast as it can for
 *                                 SECS seconds (the display benchmark's load): FBPAT drmloop frames=N
 *
 * The pattern is a hash of (x, y, seed), identical to pattern() in tests/src/bin/pngcmp.rs: any
 * misplaced pixel differs. 16 bpp framebuffers get it truncated to RGB565. Prints one FBPAT line
 * per action (OK) or "FBPAT <cmd> FAIL <why>" and exits 1.
 *
 * The DRM ioctl structures are declared here (Linux uapi include/uapi/drm/drm_mode.h layouts; the
 * build host has no DRM headers), with their sizes checked against the ioctl numbers' size field. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint32_t pattern(uint32_t x, uint32_t y, uint32_t seed) {
  uint32_t h = (x * 0x9e3779b1u) ^ (y * 0x85ebca77u) ^ (seed * 0xc2b2ae3du);
  h ^= h >> 15;
  h *= 0x2c1b3c6du;
  h ^= h >> 12;
  return h & 0x00ffffffu;
}

static int fail(const char *cmd, const char *what) {
  printf("FBPAT %s FAIL %s: %s\n", cmd, what, strerror(errno));
  return 1;
}

static int fb_geometry(const char *dev, int *fd, struct fb_var_screeninfo *v, struct fb_fix_screeninfo *f) {
  *fd = open(dev, O_RDWR);
  if (*fd < 0) return -1;
  if (ioctl(*fd, FBIOGET_VSCREENINFO, v) < 0 || ioctl(*fd, FBIOGET_FSCREENINFO, f) < 0) return -1;
  return 0;
}

static int cmd_info(const char *dev) {
  int fd;
  struct fb_var_screeninfo v;
  struct fb_fix_screeninfo f;
  if (fb_geometry(dev, &fd, &v, &f) < 0) return fail("info", dev);
  printf("FBPAT info id=%.16s xres=%u yres=%u vxres=%u vyres=%u bpp=%u stride=%u smem=%u\n", f.id, v.xres, v.yres,
         v.xres_virtual, v.yres_virtual, v.bits_per_pixel, f.line_length, f.smem_len);
  return 0;
}

static int cmd_fill(uint32_t seed, const char *dev) {
  int fd;
  struct fb_var_screeninfo v;
  struct fb_fix_screeninfo f;
  if (fb_geometry(dev, &fd, &v, &f) < 0) return fail("fill", dev);
  if (v.bits_per_pixel != 32 && v.bits_per_pixel != 16) {
    errno = EINVAL;
    return fail("fill", "only 16 and 32 bpp");
  }
  uint32_t bpp = v.bits_per_pixel / 8;
  /* Through mmap, as fbdev programs draw: DRM's fbdev emulation tracks the written pages
   * (deferred I/O) and copies them to the scanout buffer; fsync flushes that at once. */
  size_t len = (size_t)f.line_length * (v.yoffset + v.yres);
  unsigned char *fb = mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (fb == MAP_FAILED) return fail("fill", "mmap");
  for (uint32_t y = 0; y < v.yres; y++) {
    unsigned char *row = fb + (size_t)(v.yoffset + y) * f.line_length + (size_t)v.xoffset * bpp;
    for (uint32_t x = 0; x < v.xres; x++) {
      uint32_t p = pattern(x, y, seed);
      if (bpp == 4) {
        memcpy(row + x * 4, &p, 4);
      } else {
        uint16_t q = (uint16_t)(((p >> 19) & 0x1f) << 11 | ((p >> 10) & 0x3f) << 5 | ((p >> 3) & 0x1f));
        memcpy(row + x * 2, &q, 2);
      }
    }
  }
  if (msync(fb, len, MS_SYNC) < 0) return fail("fill", "msync");
  if (fsync(fd) < 0 && errno != EINVAL) return fail("fill", "fsync");
  printf("FBPAT fill seed=%u %ux%u bpp=%u\n", seed, v.xres, v.yres, v.bits_per_pixel);
  return 0;
}

/* ---- DRM uapi (drm.h, drm_mode.h) ---- */
struct drm_mode_modeinfo {
  uint32_t clock;
  uint16_t hdisplay, hsync_start, hsync_end, htotal, hskew;
  uint16_t vdisplay, vsync_start, vsync_end, vtotal, vscan;
  uint32_t vrefresh, flags, type;
  char name[32];
};
struct drm_mode_card_res {
  uint64_t fb_id_ptr, crtc_id_ptr, connector_id_ptr, encoder_id_ptr;
  uint32_t count_fbs, count_crtcs, count_connectors, count_encoders;
  uint32_t min_width, max_width, min_height, max_height;
};
struct drm_mode_get_connector {
  uint64_t encoders_ptr, modes_ptr, props_ptr, prop_values_ptr;
  uint32_t count_modes, count_props, count_encoders;
  uint32_t encoder_id, connector_id, connector_type, connector_type_id;
  uint32_t connection, mm_width, mm_height, subpixel, pad;
};
struct drm_mode_get_encoder {
  uint32_t encoder_id, encoder_type, crtc_id, possible_crtcs, possible_clones;
};
struct drm_mode_crtc {
  uint64_t set_connectors_ptr;
  uint32_t count_connectors, crtc_id, fb_id, x, y, gamma_size, mode_valid;
  struct drm_mode_modeinfo mode;
};
struct drm_mode_create_dumb {
  uint32_t height, width, bpp, flags, handle, pitch;
  uint64_t size;
};
struct drm_mode_map_dumb {
  uint32_t handle, pad;
  uint64_t offset;
};
struct drm_mode_fb_cmd {
  uint32_t fb_id, width, height, pitch, bpp, depth, handle;
};
struct drm_mode_fb_dirty_cmd {
  uint32_t fb_id, flags, color, num_clips;
  uint64_t clips_ptr;
};
_Static_assert(sizeof(struct drm_mode_modeinfo) == 68, "modeinfo");
_Static_assert(sizeof(struct drm_mode_card_res) == 0x40, "card_res");
_Static_assert(sizeof(struct drm_mode_get_connector) == 0x50, "get_connector");
_Static_assert(sizeof(struct drm_mode_crtc) == 0x68, "crtc");
_Static_assert(sizeof(struct drm_mode_create_dumb) == 0x20, "create_dumb");
_Static_assert(sizeof(struct drm_mode_map_dumb) == 0x10, "map_dumb");
_Static_assert(sizeof(struct drm_mode_fb_cmd) == 0x1c, "fb_cmd");
#define DRM_IOCTL_SET_MASTER _IO('d', 0x1e)
#define DRM_IOCTL_MODE_GETRESOURCES _IOWR('d', 0xa0, struct drm_mode_card_res)
#define DRM_IOCTL_MODE_SETCRTC _IOWR('d', 0xa2, struct drm_mode_crtc)
#define DRM_IOCTL_MODE_GETENCODER _IOWR('d', 0xa6, struct drm_mode_get_encoder)
#define DRM_IOCTL_MODE_GETCONNECTOR _IOWR('d', 0xa7, struct drm_mode_get_connector)
#define DRM_IOCTL_MODE_ADDFB _IOWR('d', 0xae, struct drm_mode_fb_cmd)
#define DRM_IOCTL_MODE_DIRTYFB _IOWR('d', 0xb1, struct drm_mode_fb_dirty_cmd)
#define DRM_IOCTL_MODE_CREATE_DUMB _IOWR('d', 0xb2, struct drm_mode_create_dumb)
#define DRM_IOCTL_MODE_MAP_DUMB _IOWR('d', 0xb3, struct drm_mode_map_dumb)
#define DRM_MODE_CONNECTED 1

static int cmd_drm(uint32_t w, uint32_t h, uint32_t seed, unsigned secs, int redraw) {
  int fd = open("/dev/dri/card0", O_RDWR);
  if (fd < 0) return fail("drm", "/dev/dri/card0");
  (void)ioctl(fd, DRM_IOCTL_SET_MASTER, 0); /* the first opener is master already */
  struct drm_mode_card_res res = {0};
  if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0) return fail("drm", "GETRESOURCES");
  uint32_t crtcs[8], conns[8], encs[8];
  if (res.count_crtcs > 8) res.count_crtcs = 8;
  if (res.count_connectors > 8) res.count_connectors = 8;
  if (res.count_encoders > 8) res.count_encoders = 8;
  res.count_fbs = 0;
  res.fb_id_ptr = 0;
  res.crtc_id_ptr = (uintptr_t)crtcs;
  res.connector_id_ptr = (uintptr_t)conns;
  res.encoder_id_ptr = (uintptr_t)encs;
  if (ioctl(fd, DRM_IOCTL_MODE_GETRESOURCES, &res) < 0) return fail("drm", "GETRESOURCES (ids)");
  for (uint32_t c = 0; c < res.count_connectors && c < 8; c++) {
    struct drm_mode_get_connector con = {.connector_id = conns[c]};
    if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &con) < 0) return fail("drm", "GETCONNECTOR");
    if (con.connection != DRM_MODE_CONNECTED || con.count_modes == 0) continue;
    uint32_t n = con.count_modes;
    struct drm_mode_modeinfo *modes = calloc(n, sizeof *modes);
    uint32_t encids[8];
    if (!modes) return fail("drm", "calloc");
    con.modes_ptr = (uintptr_t)modes;
    con.count_encoders = con.count_encoders > 8 ? 8 : con.count_encoders;
    con.encoders_ptr = (uintptr_t)encids;
    con.count_props = 0;
    con.props_ptr = con.prop_values_ptr = 0;
    if (ioctl(fd, DRM_IOCTL_MODE_GETCONNECTOR, &con) < 0) return fail("drm", "GETCONNECTOR (modes)");
    if (con.count_modes < n) n = con.count_modes;
    struct drm_mode_modeinfo *mode = NULL;
    printf("FBPAT drm modes");
    for (uint32_t i = 0; i < n; i++) {
      printf(" %ux%u", modes[i].hdisplay, modes[i].vdisplay);
      if (!mode && modes[i].hdisplay == w && modes[i].vdisplay == h) mode = &modes[i];
    }
    printf("\n");
    if (!mode) {
      errno = ENOENT;
      printf("FBPAT drm FAIL no %ux%u mode on connector %u\n", w, h, con.connector_id);
      return 1;
    }
    uint32_t crtc = crtcs[0];
    if (con.encoder_id) {
      struct drm_mode_get_encoder e = {.encoder_id = con.encoder_id};
      if (ioctl(fd, DRM_IOCTL_MODE_GETENCODER, &e) == 0 && e.crtc_id) crtc = e.crtc_id;
    }
    struct drm_mode_create_dumb db = {.width = w, .height = h, .bpp = 32};
    if (ioctl(fd, DRM_IOCTL_MODE_CREATE_DUMB, &db) < 0) return fail("drm", "CREATE_DUMB");
    struct drm_mode_fb_cmd fb = {.width = w, .height = h, .pitch = db.pitch, .bpp = 32, .depth = 24, .handle = db.handle};
    if (ioctl(fd, DRM_IOCTL_MODE_ADDFB, &fb) < 0) return fail("drm", "ADDFB");
    struct drm_mode_map_dumb map = {.handle = db.handle};
    if (ioctl(fd, DRM_IOCTL_MODE_MAP_DUMB, &map) < 0) return fail("drm", "MAP_DUMB");
    unsigned char *px = mmap(0, db.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)map.offset);
    if (px == MAP_FAILED) return fail("drm", "mmap");
    for (uint32_t y = 0; y < h; y++)
      for (uint32_t x = 0; x < w; x++) {
        uint32_t p = pattern(x, y, seed);
        memcpy(px + (size_t)y * db.pitch + x * 4, &p, 4);
      }
    struct drm_mode_crtc set = {.set_connectors_ptr = (uintptr_t)&con.connector_id, .count_connectors = 1,
                                .crtc_id = crtc, .fb_id = fb.fb_id, .mode_valid = 1, .mode = *mode};
    if (ioctl(fd, DRM_IOCTL_MODE_SETCRTC, &set) < 0) return fail("drm", "SETCRTC");
    /* Drivers with a shadow buffer (cirrus) copy only damaged areas: report all of it. */
    struct drm_mode_fb_dirty_cmd dirty = {.fb_id = fb.fb_id};
    (void)ioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty);
    printf("FBPAT drm mode=%ux%u seed=%u pitch=%u crtc=%u connector=%u held=%us\n", w, h, seed, db.pitch, crtc,
           con.connector_id, secs);
    fflush(stdout);
    if (redraw) {
      /* Benchmark load: redraw the whole screen with the next seed as fast as possible. */
      time_t end = time(0) + secs;
      unsigned frames = 0;
      while (time(0) < end) {
        seed++;
        for (uint32_t y = 0; y < h; y++) {
          uint32_t *row = (uint32_t *)(px + (size_t)y * db.pitch);
          for (uint32_t x = 0; x < w; x++) row[x] = pattern(x, y, seed);
        }
        (void)ioctl(fd, DRM_IOCTL_MODE_DIRTYFB, &dirty);
        frames++;
      }
      printf("FBPAT drmloop frames=%u secs=%u\n", frames, secs);
      return 0;
    }
    sleep(secs);
    printf("FBPAT drm released\n");
    return 0;
  }
  errno = ENODEV;
  return fail("drm", "no connected connector with modes");
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "info")) return cmd_info(argc > 2 ? argv[2] : "/dev/fb0");
  if (argc >= 3 && !strcmp(argv[1], "fill"))
    return cmd_fill((uint32_t)strtoul(argv[2], 0, 0), argc > 3 ? argv[3] : "/dev/fb0");
  if (argc == 6 && (!strcmp(argv[1], "drm") || !strcmp(argv[1], "drmloop")))
    return cmd_drm((uint32_t)strtoul(argv[2], 0, 0), (uint32_t)strtoul(argv[3], 0, 0),
                   (uint32_t)strtoul(argv[4], 0, 0), (unsigned)strtoul(argv[5], 0, 0), !strcmp(argv[1], "drmloop"));
  fprintf(stderr, "usage: fbpat info [FB] | fill SEED [FB] | drm|drmloop W H SEED SECS\n");
  return 2;
}

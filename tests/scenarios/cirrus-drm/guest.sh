# Linux's cirrus DRM driver (drivers/gpu/drm/tiny/cirrus.c) on -device cirrus-vga: it binds only
# to 1013:00b8 with subsystem 1af4:1100, maps BAR0 (VRAM) and BAR1 (registers), sets a mode and
# its fbdev emulation becomes /dev/fb0 (fbcon draws on it).
i=0; while [ ! -e /dev/fb0 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1013 ] || continue
  drv=$(readlink $d/driver)
  echo "cdev ${d##*/} $(cat $d/vendor):$(cat $d/device) sub $(cat $d/subsystem_vendor):$(cat $d/subsystem_device) driver=${drv##*/}"
  echo "cres $(head -2 $d/resource | awk '{ printf "%s-%s ", $1, $2 }')"
done
g=/sys/class/graphics/fb0
echo "GUEST-FB name=$(cat $g/name 2>/dev/null) size=$(cat $g/virtual_size 2>/dev/null) bpp=$(cat $g/bits_per_pixel 2>/dev/null) stride=$(cat $g/stride 2>/dev/null)"
dmesg | grep -i -m4 'cirrus\|fb0:' | sed 's/^/dmesg /'
# Draw through the framebuffer (the driver copies the damage into VRAM through BAR0).
dd if=/dev/urandom of=/dev/fb0 bs=4096 count=16 2>/dev/null && echo "FB-WRITE OK"
sleep 1
echo GUEST-DONE

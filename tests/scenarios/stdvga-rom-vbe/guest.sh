# bochs-drm on the standard VGA: the PCI function, the driver bound to it, the DRM fbdev it
# registers, and a write to /dev/fb0.
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1234 ] || continue
  drv=$(readlink $d/driver)
  echo "vga-dev ${d##*/} $(cat $d/vendor):$(cat $d/device) class=$(cat $d/class) driver=${drv##*/}"
done
dmesg | grep -i -e bochs -e 'fb0' | sed 's/^\[[^]]*\] //; s/^/dmesg: /' | head -8
[ -e /dev/fb0 ] || mknod /dev/fb0 c 29 0 2>/dev/null
if [ -e /sys/class/graphics/fb0 ]; then
  echo "fb0 name=$(cat /sys/class/graphics/fb0/name) size=$(cat /sys/class/graphics/fb0/virtual_size) bpp=$(cat /sys/class/graphics/fb0/bits_per_pixel)"
  dd if=/dev/zero of=/dev/fb0 bs=4096 count=16 2>/dev/null && echo "FB0-WRITE-OK"
fi
exit 0

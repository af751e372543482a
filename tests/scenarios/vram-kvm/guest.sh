# Linux bochs-drm on our -device VGA: it programs BAR0 (our KVM VramService maps the VRAM there as a
# dirty-logged memory slot), clears and draws the fbcon through it; we write 1 MiB more through /dev/fb0.
i=0; while [ ! -e /dev/fb0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
if [ ! -e /dev/fb0 ]; then echo "GUEST-NO-FB0"; cat /proc/fb; exit 1; fi
echo "GUEST-FB name=$(cat /sys/class/graphics/fb0/name) size=$(cat /sys/class/graphics/fb0/virtual_size)"
dd if=/dev/urandom of=/tmp/pat bs=4096 count=256 2>/dev/null
dd if=/tmp/pat of=/dev/fb0 bs=4096 2>/dev/null && echo "GUEST-FB-WRITTEN" || echo "GUEST-FB-WRITE-FAILED"
sleep 1
dmesg | grep -i -E 'bochs|drm' | head -8 | sed 's/^/GUEST-DMESG /'

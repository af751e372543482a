# Display checks from inside the guest; the L2 side (host.sh) answers each "@@G <step>" line
# with "go" on the serial console once its host steps (VNC clients) and screendumps are done.
step() { echo "@@G $*"; read -t 300 reply || echo "GUEST-NO-REPLY $1"; }
i=0; while [ ! -e /dev/fb0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
echo "GUEST-FB name=$(cat /sys/class/graphics/fb0/name 2>/dev/null) size=$(cat /sys/class/graphics/fb0/virtual_size 2>/dev/null) bpp=$(cat /sys/class/graphics/fb0/bits_per_pixel 2>/dev/null) stride=$(cat /sys/class/graphics/fb0/stride 2>/dev/null)"
fbpat info
# Text on the framebuffer console (fbcon on tty1): two identical rows, then a different one.
printf '\033[2J\033[H' > /dev/tty1
printf 'TEXT-ROW Hello tty1 0123\nTEXT-ROW Hello tty1 0123\nOTHER-ROW zyxw 9876 qpon\n' > /dev/tty1
step text
# Keys typed by a VNC client reach tty1 (the console's foreground VT).
exec 4< /dev/tty1
step keys
read -t 30 k <&4; echo "TTY1-KEYS [$k]"
# Pattern written through /dev/fb0 (fbcon's cursor is off: vt.global_cursor_default=0).
fbpat fill 7
step pattern
# Mode change through DRM (a dumb buffer with another pattern at 800x600), then back to fbcon.
step drm-ready
fbpat drm 800 600 9 120 > /tmp/drm.log 2>&1 &
dp=$!
i=0; while ! grep -q 'mode=\|FAIL' /tmp/drm.log && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
cat /tmp/drm.log
step drm
kill $dp; wait $dp
step restored
echo GUEST-DONE

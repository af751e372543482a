# vga-std: Linux bochs-drm on -device VGA with -vnc :0, checked by real VNC clients on the test
# host (host-client.sh, through the forwarded port) and by QMP screendump in L2.
S=/tmp/qmp.sock
# vga-cirrus runs this same script (a symlink) on the Cirrus card.
case $NAME in *cirrus*) VGA_ARGS="-device cirrus-vga" ;; *) VGA_ARGS="-device VGA" ;; esac
fail() { echo "STEP-FAILED: $*"; bg_stop; exit 1; }
go() { guest_say go; }
# screendump NAME FORMAT: QMP screendump into /tmp/NAME.FORMAT (ppm or png)
screendump() {
  q "sd-$1" $S --flat "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"/tmp/$1.$2\",\"format\":\"$2\"}}"
}
guest_input
APPEND_EXTRA="vt.global_cursor_default=0 consoleblank=0"
MEM=256M
bg boot -vnc :0 $VGA_ARGS -qmp unix:$S,server=on,wait=off
wait_out 1 "@@G text" 300 || fail "guest never reached the text step"
q vnc $S --flat '{"execute":"query-vnc"}'
host_step text
screendump text ppm && pngcmp nonblank /tmp/text.ppm --rect 0,0,192,16 --min 100 | sed 's/^/sd /'
go
wait_out 1 "@@G keys" 60 || fail "no keys step"
host_step keys
go
wait_out 1 "TTY1-KEYS" 60
wait_out 1 "@@G pattern" 60 || fail "no pattern step"
W=$(bg_lines 'FBPAT fill' | sed -n 's/.* \([0-9]*\)x\([0-9]*\) bpp=.*/\1/p' | head -1)
H=$(bg_lines 'FBPAT fill' | sed -n 's/.* \([0-9]*\)x\([0-9]*\) bpp=.*/\2/p' | head -1)
BPP=$(bg_lines 'FBPAT fill' | sed -n 's/.* bpp=\([0-9]*\).*/\1/p' | head -1)
D=24; [ "$BPP" = 16 ] && D=16
host_step pattern "$W" "$H" "$D"
for f in ppm png; do
  screendump pattern $f && pngcmp pattern /tmp/pattern.$f --seed 7 --size "${W}x$H" --depth $D | sed "s/^/sd $f /"
done
go
wait_out 1 "@@G drm-ready" 60 || fail "no drm-ready step"
host_step live-start
go
wait_out 1 "@@G drm" 60 || fail "no drm step"
host_step drm
screendump drm ppm && pngcmp pattern /tmp/drm.ppm --seed 9 --size 800x600 | sed 's/^/sd /' && pngcmp info /tmp/drm.ppm | sed 's/^/sd /'
go
wait_out 1 "@@G restored" 60 || fail "no restored step"
host_step restored "$W" "$H"
screendump restored ppm && pngcmp info /tmp/restored.ppm | sed 's/^/sd /'
go
wait_out 1 "GUEST-DONE" 60
bg_wait 60

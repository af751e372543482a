# Host steps of vga-std / vga-cirrus (run on the test host by tests/src/host_steps.rs; the VNC
# server inside L2 is at $VNC_HOST:$VNC_PORT, display $VNC_DISPLAY). Artifacts go to $ART.
set -u
step=$1; shift
vncdo() { timeout 90 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" "$@"; }
# cap NAME: gvnccapture's screenshot (it saves once an update covers the bottom-right corner)
cap() {
  timeout 60 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$ART/$1.png" > "$ART/$1.gvnc.log" 2>&1
  rc=$?; [ $rc = 0 ] || { echo "gvnccapture rc=$rc: $(tail -2 "$ART/$1.gvnc.log")"; return 1; }
}
cmp() { "$PNGCMP" "$@"; }
case $step in
  text)
    cap text || exit 1
    cmp info "$ART/text.png"
    cmp nonblank "$ART/text.png" --rect 0,0,192,16 --min 100
    cmp same "$ART/text.png" --rect 0,0,192,16 --at2 0,16
    cmp same "$ART/text.png" --rect 0,0,192,16 --at2 0,32 --differ 1
    ;;
  keys)
    vncdo type Hello-VNC42 key enter && echo "VNCDO typed"
    ;;
  pattern)
    w=$1 h=$2 d=$3
    cap pattern || exit 1
    cmp info "$ART/pattern.png"
    cmp pattern "$ART/pattern.png" --seed 7 --size "${w}x$h" --depth "$d"
    vncdo capture "$ART/pattern-vncdo.png" && cmp pattern "$ART/pattern-vncdo.png" --seed 7 --size "${w}x$h" --depth "$d" | sed 's/^/vncdo /'
    ;;
  live-start)
    # A client connected across the guest's mode change: it must follow the DesktopSize change.
    nohup timeout 120 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" capture "$ART/live-before.png" pause 15 capture "$ART/live-after.png" \
      > "$ART/live.log" 2>&1 < /dev/null &
    echo $! > "$ART/live.pid"
    sleep 3; echo "live client started"
    ;;
  drm)
    pid=$(cat "$ART/live.pid"); i=0
    while kill -0 "$pid" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
    [ -f "$ART/live-after.png" ] || echo "live client: no capture after the mode change: $(tail -3 "$ART/live.log")"
    cmp info "$ART/live-before.png" | sed 's/^/live-before /'
    cmp info "$ART/live-after.png" | sed 's/^/live-after /'
    cmp pattern "$ART/live-after.png" --seed 9 --size 800x600 | sed 's/^/live-after /'
    cap drm || exit 1
    cmp info "$ART/drm.png"
    cmp pattern "$ART/drm.png" --seed 9 --size 800x600
    ;;
  restored)
    cap restored || exit 1
    cmp info "$ART/restored.png"
    ;;
  *) echo "unknown step $step"; exit 2 ;;
esac

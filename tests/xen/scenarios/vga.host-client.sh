# Host steps of the xen-*-vga-* scenarios (tests/xen/scenarios/vga.sh), run on the test host by host-steps: the
# device model's VNC server in dom0 is at $VNC_HOST:$VNC_PORT (display $VNC_DISPLAY). Artifacts in $ART.
set -u
step=$1; shift
# gvnc PASSWORD FILE: gvnccapture asks for the password on its terminal: give it one (script) and type it.
# PASSWORD "none": no password (the server does not ask).
gvnc() {
  if [ "$1" = none ]; then timeout 60 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$2" < /dev/null; return; fi
  (sleep 3; echo "$1") | timeout 60 script -qec "$GVNCCAPTURE $VNC_HOST:$VNC_DISPLAY $2" /dev/null
}
case $step in
  auth)
    pw=$1
    timeout 30 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$ART/nopw.png" < /dev/null > "$ART/nopw.log" 2>&1 \
      && { echo "AUTH gvnccapture without a password got in"; exit 1; }
    echo "AUTH gvnccapture without a password refused: $(tr -d '\r' < "$ART/nopw.log" | tail -1)"
    timeout 30 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" -p wrong-pw capture "$ART/wrongpw.png" > "$ART/wrongpw.log" 2>&1 \
      && { echo "AUTH vncdo with a wrong password got in"; exit 1; }
    echo "AUTH vncdo wrong password refused ($(grep -o 'Authentication failed' "$ART/wrongpw.log" | head -1))"
    timeout 60 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" -p "$pw" capture "$ART/rightpw.png" > "$ART/rightpw.log" 2>&1 \
      || { echo "AUTH vncdo with the right password failed: $(tail -2 "$ART/rightpw.log")"; exit 1; }
    echo "AUTH vncdo right password: $("$PNGCMP" info "$ART/rightpw.png")"
    ;;
  capture)
    tag=$1 kind=$2 pw=$3
    gvnc "$pw" "$ART/$tag.png" > "$ART/$tag.gvnc.log" 2>&1 || { echo "gvnccapture failed: $(tail -2 "$ART/$tag.gvnc.log")"; exit 1; }
    "$PNGCMP" info "$ART/$tag.png"
    "$PNGCMP" text "$ART/$tag.png" --font "/usr/share/seabios/vgabios-$kind.bin" --expect "SeaBIOS (version" > "$ART/$tag.text"
    rc=$?
    cat "$ART/$tag.text"
    "$PNGCMP" text "$ART/$tag.png" --font "/usr/share/seabios/vgabios-$kind.bin" --expect "Booting from DVD/CD" | grep PNGCMP
    exit $rc
    ;;
  kept)
    # The text (the cursor cell may blink: '?' counts as blank) is the same after the restore.
    norm() { grep '^TEXT' "$1" | tr '?' ' ' | sed 's/ *$//' | grep -v '^TEXT [0-9]*:$'; }
    if [ "$(norm "$ART/before.text")" = "$(norm "$ART/after.text")" ] && [ -n "$(norm "$ART/before.text")" ]; then
      echo "PICTURE-KEPT $(norm "$ART/before.text" | wc -l) text rows identical"
    else
      echo "PICTURE-CHANGED"; diff "$ART/before.text" "$ART/after.text"; exit 1
    fi
    ;;
  pattern)
    w=$1 h=$2 d=$3
    gvnc none "$ART/pattern.png" > "$ART/pattern.gvnc.log" 2>&1 || { echo "gvnccapture failed: $(tail -2 "$ART/pattern.gvnc.log")"; exit 1; }
    "$PNGCMP" info "$ART/pattern.png"
    "$PNGCMP" pattern "$ART/pattern.png" --seed 7 --size "${w}x$h" --depth "$d"
    ;;
  *) echo "unknown step $step"; exit 2 ;;
esac

# Host steps of seabios-vga: gvnccapture and vncdo screenshots of the firmware/payload text
# screen, decoded with the VGA BIOS font (the host's seabios package: the ROM the DM loads).
set -u
step=$1; shift
vncdo() { timeout 60 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" "$@"; }
case $step in
  auth)
    pw=$1
    timeout 30 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$ART/nopw.png" < /dev/null > "$ART/nopw.log" 2>&1 \
      && { echo "AUTH gvnccapture without a password got in"; exit 1; }
    echo "AUTH gvnccapture without a password refused"
    vncdo -p wrong-pw capture "$ART/wrongpw.png" > "$ART/wrongpw.log" 2>&1 && { echo "AUTH vncdo with a wrong password got in"; exit 1; }
    echo "AUTH vncdo with a wrong password refused"
    ;;
  capture)
    rom=$1 pw=$2 font=/usr/share/seabios/vgabios-$1.bin
    if [ "$pw" = none ]; then
      timeout 60 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$ART/$rom.png" < /dev/null > "$ART/$rom.gvnc.log" 2>&1
    else
      # gvnccapture reads the password from its terminal: give it one (script) and type it
      (sleep 3; echo "$pw") | timeout 60 script -qec "$GVNCCAPTURE $VNC_HOST:$VNC_DISPLAY $ART/$rom.png" /dev/null > "$ART/$rom.gvnc.log" 2>&1
    fi || { echo "gvnccapture failed: $(tr -d '\r' < "$ART/$rom.gvnc.log" | tail -2)"; exit 1; }
    "$PNGCMP" info "$ART/$rom.png"
    "$PNGCMP" text "$ART/$rom.png" --font "$font" --expect "DIRECT-B800 yellow on blue"
    for t in "SeaBIOS (version" "TEXT-PAYLOAD int10 teletype 0123456789"; do
      "$PNGCMP" text "$ART/$rom.png" --font "$font" --expect "$t" | grep PNGCMP
    done
    popt=; [ "$pw" = none ] || popt="-p $pw"
    # shellcheck disable=SC2086
    vncdo $popt capture "$ART/$rom-vncdo.png" \
      && "$PNGCMP" text "$ART/$rom-vncdo.png" --font "$font" --expect "DIRECT-B800 yellow on blue" | grep PNGCMP | sed 's/^/vncdo /'
    ;;
  *) echo "unknown step $step"; exit 2 ;;
esac

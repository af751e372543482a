# Host steps of seabios-vga: gvnccapture and vncdo screenshots of the firmware's text screen,
# decoded with the VGA BIOS font (from the host's seabios package, the ROM the DM loads).
set -u
step=$1; rom=$2
font=/usr/share/seabios/vgabios-$rom.bin
case $step in
  capture)
    timeout 60 "$GVNCCAPTURE" "$VNC_HOST:$VNC_DISPLAY" "$ART/$rom.png" > "$ART/$rom.gvnc.log" 2>&1 \
      || { echo "gvnccapture failed: $(tail -2 "$ART/$rom.gvnc.log")"; exit 1; }
    "$PNGCMP" info "$ART/$rom.png"
    "$PNGCMP" text "$ART/$rom.png" --font "$font" --expect "No bootable device"
    "$PNGCMP" text "$ART/$rom.png" --font "$font" --expect "SeaBIOS (version" | grep PNGCMP
    timeout 60 "$VNCDO" -s "$VNC_HOST::$VNC_PORT" capture "$ART/$rom-vncdo.png" \
      && "$PNGCMP" text "$ART/$rom-vncdo.png" --font "$font" --expect "No bootable device" | grep PNGCMP | sed 's/^/vncdo /'
    ;;
  *) echo "unknown step $step"; exit 2 ;;
esac

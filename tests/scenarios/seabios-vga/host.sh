# seabios-vga: SeaBIOS (-bios, no disk) with each card and -vnc :0: the VGA BIOS's text screen
# ("SeaBIOS (version ...)", "No bootable device.") decoded cell by cell with the BIOS's own font,
# from QMP screendump in L2 and from real VNC clients on the host (host-client.sh).
S=/tmp/qmp.sock
for card in VGA:stdvga cirrus-vga:cirrus; do
  dev=${card%%:*} rom=${card##*:}
  font=/usr/share/seabios/vgabios-$rom.bin
  BG_QUIET=1 bg dm -accel kvm -m 64M -nodefaults -display none -no-reboot -vnc :0 -device "$dev" \
    -bios /usr/share/seabios/bios-256k.bin -qmp unix:$S,server=on,wait=off
  # SeaBIOS prints "No bootable device" after its boot attempts: poll the screen for it.
  seen=no; i=0
  while [ $i -lt 40 ]; do
    i=$((i + 1)); sleep 2
    /bin/qmp $S "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"/tmp/$rom.ppm\"}}" > /dev/null 2>&1 || continue
    pngcmp text /tmp/$rom.ppm --font $font --expect "No bootable device" > /tmp/$rom.txt 2>&1 && { seen=yes; break; }
  done
  echo "SCREEN $rom seen=$seen after ${i} polls"
  sed "s/^/sd $rom /" /tmp/$rom.txt
  pngcmp text /tmp/$rom.ppm --font $font --expect "SeaBIOS (version" | grep PNGCMP | sed "s/^/sd $rom /"
  host_step capture "$rom"
  bg_stop
  cat $BG_OUT | grep -v '^$' | tail -5 | sed "s/^/dm $rom: /"
done

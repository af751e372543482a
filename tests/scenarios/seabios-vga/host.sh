# seabios-vga: SeaBIOS (-bios) with each card and -vnc :0 boots a text-mode payload from a CD
# (vgapay.S: INT 10h teletype, a direct 0xb8000 write in yellow on blue, cursor off). The text
# screen is decoded cell by cell with the VGA BIOS's own font from QMP screendump in L2 and from
# real VNC clients on the host (host-client.sh). The cirrus round runs with -vnc ...,password=on
# and a password set over QMP (change-vnc-password): clients without it must be refused.
S=/tmp/qmp.sock
# SeaBIOS is Debian's 128 KiB bios.bin, not bios-256k.bin: the 256 KiB build runs smm_setup, which
# opens SMRAM (i440FX 0x72 D_OPEN) and copies 64 KiB to and from 0xa0000; we do not steer SMRAM to
# RAM yet, so on ours that build does not get past PCI init within minutes under nested TCG (an
# open defect, see README "Not yet"). The VGA path under test is the same with both builds.
for card in VGA:stdvga cirrus-vga:cirrus; do
  dev=${card%%:*} rom=${card##*:}
  font=/usr/share/seabios/vgabios-$rom.bin
  vnc=:0; pw=none
  [ $rom = cirrus ] && { vnc=:0,password=on; pw=vga-pw1; }
  BG_QUIET=1 bg dm -accel kvm -m 64M -nodefaults -display none -no-reboot -vnc $vnc -device "$dev" \
    -bios /usr/share/seabios/bios.bin -boot order=d -qmp unix:$S,server=on,wait=off \
    -drive file=$PWD/vgapay.iso,if=ide,index=2,media=cdrom,format=raw
  [ $pw = none ] || q pw $S --flat "{\"execute\":\"change-vnc-password\",\"arguments\":{\"password\":\"$pw\"}}"
  # Poll the screen until the payload's direct write is there.
  seen=no; i=0; end=$(($(date +%s) + 90))
  while [ "$(date +%s)" -lt $end ]; do
    i=$((i + 1)); sleep 2
    /bin/qmp $S --timeout 5 --connect-wait 5 "{\"execute\":\"screendump\",\"arguments\":{\"filename\":\"/tmp/$rom.ppm\"}}" > /tmp/sd.out 2>&1 \
      || { echo "screendump failed: $(tail -1 /tmp/sd.out)" > /tmp/$rom.txt; continue; }
    pngcmp text /tmp/$rom.ppm --font $font --expect "DIRECT-B800 yellow on blue" > /tmp/$rom.txt 2>&1 && { seen=yes; break; }
  done
  echo "SCREEN $rom seen=$seen after ${i} polls"
  sed "s/^/sd $rom /" /tmp/$rom.txt
  for t in "SeaBIOS (version" "TEXT-PAYLOAD int10 teletype 0123456789"; do
    pngcmp text /tmp/$rom.ppm --font $font --expect "$t" | grep PNGCMP | sed "s/^/sd $rom /"
  done
  q vnc-$rom $S --flat '{"execute":"query-vnc"}' | grep -E 'enabled|auth|service'
  [ $pw = none ] || host_step auth "$pw"
  host_step capture "$rom" "$pw"
  bg_stop
  grep -v '^$' $BG_OUT | tail -5 | sed "s/^/dm $rom: /"
done

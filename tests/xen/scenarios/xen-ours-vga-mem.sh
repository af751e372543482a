# VRAM on Xen with our device model and vga="stdvga" (display.md section 6): the device model populates the
# 16 MiB just past the guest's RAM, hvmloader's BAR0 programming relocates them into the BAR, Xen's stdvga hook
# sends VGA-window writes on the buffered ring (consumed), and xl save/restore finds the restored pages where
# they were (no second population) with the payload's counter continuing.
name=ovga
log=/var/log/xen/qemu-dm-$name.log
f=/var/lib/xen/$name.save
guest_cfg $name ours
sed -i '/^vga = /d' /run/cfg/$name.cfg
echo 'vga = "stdvga"' >> /run/cfg/$name.cfg
echo 'videoram = 16' >> /run/cfg/$name.cfg
create $name
create_wait $name 70
[ "$XLRC" = 0 ] && ok "xl create with vga=stdvga" || bad "xl create rc=$XLRC"
if [ "$XLRC" = 0 ] && wait_serial $name XENCD-MARKER 90; then
  ok "payload marker on COM1 (hvmloader + SeaBIOS + VGA BIOS ran)"
  wait_count $name 3 20 && ok "counter reached $(last_count "$(serial_log $name)")" || bad "counter stuck"
else
  bad "no payload marker"; diag $name; finish
fi
d=$(domid $name)
# -m is maxmem - videoram = 16 MiB, so the VRAM's home is gfn 0x1000 (QEMU's RAM-block offset)
grep -q 'VRAM: 16384 KiB populated at gfn 0x1000-0x1fff' "$log" && ok "VRAM populated past RAM" \
  || bad "no 'VRAM: 16384 KiB populated at gfn 0x1000-0x1fff' in our log"
reloc=$(grep -o 'VRAM: relocated 4096 pages from gfn 0x1000 to 0x[0-9a-f]*' "$log" | tail -1)
[ -n "$reloc" ] && ok "$reloc" || bad "VRAM never relocated into BAR0"
grep -q 'VRAM: our mapping follows the relocation' "$log" && ok "our VRAM mapping follows the relocation" \
  || bad "relocation check did not pass"
grep -q 'buffered ring (atomic)' "$log" && ok "ioreq server has the buffered ring" || bad "no buffered ring"
grep -q 'buffered write(s) performed' "$log" && ok "buffered VGA-window writes consumed" || bad "no buffered write consumed"
key=/local/domain/0/device-model/$d/physmap/1000000
start=$(xenstore-read $key/start_addr 2>/dev/null)
[ -n "$start" ] && [ "$(xenstore-read $key/name 2>/dev/null)" = vga.vram ] && ok "physmap key: VRAM at 0x$start" \
  || bad "no physmap key $key"
echo "VGA-MEM xl list: $(xl list $name 2>&1 | tail -1)"
grep -E 'VRAM|buffered' "$log" | sed 's/^/DM: /'

# save and restore
xl -v save $name $f > /var/log/xen/xl-save-$name.log 2>&1; rc=$?
[ $rc = 0 ] && ok "xl save" || { bad "xl save rc=$rc"; tail -20 /var/log/xen/xl-save-$name.log; diag $name; finish; }
mv "$(serial_log $name)" "$(serial_log $name).before"
c1=$(last_count "$(serial_log $name).before"); echo "last count before save: $c1"
xl -vvv restore $f > /var/log/xen/xl-restore-$name.log 2>&1; rc=$?
if [ $rc != 0 ]; then
  bad "xl restore rc=$rc"; grep -v ' debug: ' /var/log/xen/xl-restore-$name.log | grep -E -i 'error|fail|warn' | head -20
  mv /var/log/xen/xl-restore-$name.log /var/log/xen/xl-create-$name.log; diag $name; finish
fi
ok "xl restore"
if wait_count $name 1 20; then
  first=$(first_count "$(serial_log $name)")
  [ "$first" -gt "$c1" ] && [ "$first" -le $((c1 + 5)) ] && ok "counter continued ($c1 -> $first)" \
    || bad "counter did not continue ($c1 -> $first)"
  grep -q XENCD-MARKER "$(serial_log $name)" && bad "the guest booted again after restore"
else
  bad "no counter after restore"
fi
grep -q "VRAM: 16384 KiB restored by Xen at gfn 0x$(echo "$start" | sed 's/000$//')" "$log" \
  && ok "restored VRAM found at 0x$start, not populated" || bad "restored DM did not find the VRAM at 0x$start"
# libxl rotates qemu-dm-NAME.log when it starts the restored device model; if it did not, the first one is above
n=$(grep -c 'KiB populated at gfn' "$log"); [ -f "$log.1" ] || n=$((n - 1))
[ "$n" -le 0 ] && ok "the restored DM did not populate" || bad "the restored DM populated VRAM again"
mv /var/log/xen/xl-restore-$name.log /var/log/xen/xl-create-$name.log
diag $name
rm -f $f
finish

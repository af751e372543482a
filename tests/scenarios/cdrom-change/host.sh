# CD-ROM media changes over QMP while the guest runs, exactly as libxl drives qemu-xen:
# -device ide-cd,id=ide-5632 behind an if=none drive, `eject` by id, `add-fd` with an O_RDONLY
# fd of the new image, `blockdev-change-medium` on /dev/fdset/N; then once with a plain path.
S=/tmp/libxl-cmd.sock
NO_REBOOT=   # the guest resets once at the end, to show the medium survives it
bg boot -drive if=none,readonly=on,id=ide-5632,file=$PWD/a.iso,format=raw \
  -device ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0 \
  -chardev socket,id=libxl-cmd,path=$S,server=on,wait=off -mon chardev=libxl-cmd,mode=control
step() { echo "step: $*"; }
fail() { echo "STEP-FAILED: $*"; bg_stop; exit 1; }
wait_out 1 "G-HAVE ISO-A" 60 || fail "guest never read ISO A"
q before $S --flat '{"execute":"query-block"}' '{"execute":"query-blockstats"}' | tee /tmp/before.out
# the guest has read the medium: the backend counted it
rd=$(sed -n 's/^qmp before: return\[0\]\.stats\.rd_bytes=//p' /tmp/before.out)
ops=$(sed -n 's/^qmp before: return\[0\]\.stats\.rd_operations=//p' /tmp/before.out)
[ "${rd:-0}" -gt 100000 ] && [ "${ops:-0}" -gt 0 ] && echo "BLOCKSTATS-READS-COUNTED" || echo "BLOCKSTATS-NO-READS rd_bytes=$rd rd_operations=$ops"
# libxl: eject (no force), then insert via an fd set
q eject $S --flat '{"execute":"eject","arguments":{"id":"ide-5632"}}'
q ejected $S --flat '{"execute":"query-block"}'
q insert-fd $S --flat --fd $PWD/b.iso '{"execute":"add-fd","arguments":{"opaque":"'$PWD/b.iso'"}}' \
  '{"execute":"blockdev-change-medium","arguments":{"id":"ide-5632","filename":"/dev/fdset/@FDSET@","format":"raw"}}' \
  '{"execute":"query-block"}' \
  '{"execute":"remove-fd","arguments":{"fdset-id":@FDSET@}}' '{"execute":"query-fdsets"}'
wait_out 1 "G-HAVE ISO-B" 60 || fail "guest never saw ISO B"
# plain path, tray closed: blockdev-change-medium opens, swaps and closes it
q insert-path $S --flat '{"execute":"blockdev-change-medium","arguments":{"id":"ide-5632","filename":"'$PWD/c.iso'","format":"raw","read-only-mode":"read-only"}}' \
  '{"execute":"query-block"}'
wait_out 1 "G-HAVE ISO-C" 60 || fail "guest never saw ISO C"
wait_out 1 "G-AFTER-REBOOT" 60 || fail "no second boot with ISO C"
bg_wait 30; rc=$?
# what the guest read against what was put into each ISO
while read -r id sum sectors; do
  got=$(bg_lines "G-HAVE $id " | head -1)
  [ "$got" = "G-HAVE $id $sum $sectors" ] && echo "MEDIUM-MATCH $id" || echo "MEDIUM-MISMATCH $id: want '$id $sum $sectors' got '$got'"
done < sums
exit $rc

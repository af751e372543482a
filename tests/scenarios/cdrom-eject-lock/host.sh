# Tray and lock: guest eject, lock by mount, QMP eject refused on a locked drive and forced,
# reads of an empty drive. The drive is QEMU's `-cdrom` (backend ide1-cd0, no device id), so
# QMP addresses it the pre-libxl-4.15 way, by "device".
S=/tmp/qmp.sock
# Two monitors, as libxl has (QEMU serves one client per monitor at a time): commands on $S,
# a long-lived event listener on $E.
E=/tmp/qmp-events.sock
bg boot -cdrom $PWD/lock.iso -qmp unix:$S,server=on,wait=off -qmp unix:$E,server=on,wait=off
fail() { echo "STEP-FAILED: $*"; bg_stop; exit 1; }
# an event listener, connected before the guest does anything
q events $E --only DEVICE_TRAY_MOVED --events 4 --wait 60 > /tmp/events.out 2>&1 & EV=$!
wait_out 1 "G-EJECTED" 60 || fail "guest eject"
q guest-ejected $S --flat '{"execute":"query-block"}'
q close $S --flat '{"execute":"blockdev-close-tray","arguments":{"device":"ide1-cd0"}}'
wait_out 1 "G-MOUNTED" 30 || fail "mount"
q mounted $S --flat '{"execute":"query-block"}'
q eject-locked $S --flat '{"execute":"eject","arguments":{"device":"ide1-cd0"}}'
q still-in $S --flat '{"execute":"query-block"}'
q eject-force $S --flat '{"execute":"eject","arguments":{"device":"ide1-cd0","force":true}}'
q forced $S --flat '{"execute":"query-block"}'
wait_out 1 "G-EMPTY-READ" 40 || fail "empty read"
q empty $S --flat '{"execute":"query-block"}'
q open $S --flat '{"execute":"blockdev-open-tray","arguments":{"device":"ide1-cd0"}}'
bg_wait 40; rc=$?
# the listener saw the tray move in this order
wait $EV
cat /tmp/events.out
echo "EVENT-SEQ $(sed -n 's/.*event DEVICE_TRAY_MOVED .*tray-open=\([a-z]*\).*/\1/p' /tmp/events.out | tr '\n' ' ')"
exit $rc

# QMP run control and protocol behaviour, against a running guest and a -S (prelaunch) one.
S=/tmp/qmp.sock
fail() { echo "STEP-FAILED: $*"; bg_stop; exit 1; }
ticks() { grep -c 'TICK' $BG_OUT; }
SMP=2
bg boot -qmp unix:$S,server=on,wait=off
wait_out 1 "TICK 5" 60 || fail "guest not ticking"
# before negotiation only qmp_capabilities is accepted
q precaps $S --no-caps --flat '{"execute":"query-status"}' '{"execute":"qmp_capabilities"}' '{"execute":"query-status","id":"abc-1"}'
q stop $S --flat '{"execute":"stop"}' '{"execute":"query-status"}'
sleep 0.5; n1=$(ticks); sleep 3; n2=$(ticks)
[ "$n1" = "$n2" ] && echo "PAUSE-HELD ticks=$n1" || echo "PAUSE-LEAKED ticks $n1 -> $n2"
q cont $S --flat '{"execute":"cont"}' '{"execute":"query-status"}'
wait_out $((n2 + 3)) "TICK" 30 && echo "RESUMED-TICKING" || echo "NOT-RESUMED"
q info $S --flat '{"execute":"query-cpus-fast"}' '{"execute":"query-version"}'
q errors $S --flat '{"execute":"no-such-command"}' --raw '{"execute": }' '{"execute":"query-status"}' \
  '{"execute":"query-status","arguments":{"bogus":1}}' '{"execute":"query-status"}'
q quit $S --flat --expect-close '{"execute":"quit"}'
bg_wait 20; echo "after-quit: dm rc=$?"

# -S: nothing runs until cont
bg boot -S -qmp unix:$S,server=on,wait=off
q prelaunch $S --flat '{"execute":"query-status"}'
sleep 3
echo "PRELAUNCH-GUEST-LINES $(grep -c 'TICK\|Linux version\|^\[ *[0-9]' $BG_OUT)"
q start $S --flat '{"execute":"cont"}' '{"execute":"query-status"}'
wait_out 1 "TICK 3" 60 && echo "STARTED-AFTER-CONT" || echo "NOT-STARTED"
q quit2 $S --flat --expect-close '{"execute":"quit"}'
bg_wait 20; echo "after-quit2: dm rc=$?"

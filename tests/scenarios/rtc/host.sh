# Boots the RTC checks, then, while the guest idles, counts the device model's voluntary
# context switches (every thread) over 10 s: for information, to compare wake-up costs.
ctxsw() {
  for t in /proc/$1/task/*; do
    echo "$(cat $t/comm 2>/dev/null) $(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' $t/status 2>/dev/null)"
  done
}
bg boot
if wait_out 1 IDLE-BEGIN 120; then
  sleep 1
  pid=$(pidof devicemodel qemu-system-x86_64 | cut -d' ' -f1)
  ctxsw $pid > /tmp/ctx0; sleep 10; ctxsw $pid > /tmp/ctx1
  # per thread name: switches in the 10 s (threads are matched by line order, which is stable)
  paste -d' ' /tmp/ctx0 /tmp/ctx1 | awk '{d=$4-$2; tot+=d; printf "@@idle-ctxsw %s %d\n", $1, d} END {printf "@@idle-ctxsw-10s total=%d\n", tot}'
fi
bg_wait 60

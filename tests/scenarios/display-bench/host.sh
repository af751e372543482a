# Display benchmark (see bench/display.sh): per device model, with -device VGA and -vnc :0 in L2, a
# measuring client (vncbench, L2 /bin) reports: idle DM CPU with a client attached, bytes of one full
# update, and frames/s + bytes per frame while the guest redraws the whole 1024x768 screen.
guest_input
APPEND_EXTRA="vt.global_cursor_default=0 consoleblank=0"
# cpu_ticks PID: utime + stime of a process (all threads), in clock ticks (100/s)
cpu_ticks() { awk '{print $14 + $15}' /proc/$1/stat 2>/dev/null || echo 0; }
for dm in ours qemu; do
  BG_QUIET=1 bg run_dm $dm -accel kvm -m 256M -smp 1 -nodefaults -display none -serial stdio -no-reboot \
    -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND $APPEND_EXTRA" -vnc :0 -device VGA
  if ! wait_out 1 "@@G idle" 240; then echo "BENCH-DISPLAY dm=$dm error=no-boot"; bg_stop; continue; fi
  pid=$(pidof devicemodel qemu-system-x86_64 | cut -d' ' -f1)
  sleep 3
  # idle: a client attached (incremental requests outstanding), the guest at a still text console
  vncbench 127.0.0.1:5900 --secs 12 > /tmp/idle.$dm 2>&1 &
  vp=$!
  sleep 1; c0=$(cpu_ticks $pid); t0=$(date +%s); sleep 10; c1=$(cpu_ticks $pid); t1=$(date +%s)
  wait $vp
  idle=$(awk "BEGIN{printf \"%.1f\", ($c1 - $c0) / ($t1 - $t0)}")
  echo "BENCH-DISPLAY dm=$dm phase=idle dm_cpu_pct=$idle $(cat /tmp/idle.$dm)"
  guest_say go
  wait_out 1 "FBPAT drm mode=" 60 || { echo "BENCH-DISPLAY dm=$dm error=no-drm"; bg_stop; continue; }
  sleep 2
  c0=$(cpu_ticks $pid); t0=$(date +%s)
  echo "BENCH-DISPLAY dm=$dm phase=redraw $(vncbench 127.0.0.1:5900 --secs 10 --encodings zrle)"
  c1=$(cpu_ticks $pid); t1=$(date +%s)
  echo "BENCH-DISPLAY dm=$dm phase=redraw-cpu dm_cpu_pct=$(awk "BEGIN{printf \"%.1f\", ($c1 - $c0) / ($t1 - $t0)}")"
  echo "BENCH-DISPLAY dm=$dm phase=redraw-raw $(vncbench 127.0.0.1:5900 --secs 8 --encodings raw)"
  wait_out 1 "GUEST-DONE" 120
  bg_lines "FBPAT drmloop" | sed "s/^/BENCH-DISPLAY dm=$dm phase=guest /"
  bg_wait 60 >/dev/null
done

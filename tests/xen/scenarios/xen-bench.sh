# Side by side, qemu-xen vs ours: xl create -> payload marker; the device model's peak RSS (VmHWM); then over 4 s of
# payload output (at most 9.1 lines/s, each line ~40 chars = ~80 port ioreqs): lines/s and the DM's dom0 CPU time.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
for dm in qemu ours; do
  g=b$dm
  if boot_guest $g $dm; then
    t=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $CREATE_T0}")
    # output rate: each payload line is ~40 chars, two port accesses (LSR poll, THR write) per char = ioreqs
    wait_count $g 2 15
    # and the device model's dom0 CPU time meanwhile (utime + stime, in clock ticks of 10 ms)
    p=$(dm_pid "$(domid $g)")
    c0=$(last_count "$(serial_log $g)"); t0=$(up); j0=$(cpu_ticks "$p"); sleep 4
    c1=$(last_count "$(serial_log $g)"); j1=$(cpu_ticks "$p"); t1=$(up)
    rate=$(awk "BEGIN{printf \"%.2f\", ($c1 - $c0) / ($t1 - $t0)}")
    cpu=$(awk "BEGIN{printf \"%.0f\", 1000 * ($j1 - $j0) / 100 / ($t1 - $t0)}")
    hwm=$(vmhwm "$p")
    echo "XEN-BENCH dm=$dm create_to_marker_s=$t vmhwm_kb=${hwm:-unknown} lines_per_s=$rate dm_cpu_ms_per_s=$cpu thre_waits=$(last_thre_waits "$(serial_log $g)")"
    echo "$dm process: $(grep -E '^(VmRSS|Threads)' /proc/$p/status 2>/dev/null | tr -s ' \t' ' ' | tr '\n' ' ')"
    ok "$dm measured"
  else
    echo "XEN-BENCH dm=$dm create_to_marker_s=FAIL vmhwm_kb=$(vmhwm "$(dm_pid "$(domid $g)")" || echo unknown)"
    bad "$dm guest did not boot"
  fi
  xl destroy $g 2>/dev/null
  cleanup_domains
done
finish

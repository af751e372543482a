# Side by side: xl create -> payload marker, and the device model's peak RSS (VmHWM), qemu-xen vs ours.
for dm in qemu ours; do
  g=b$dm
  if boot_guest $g $dm; then
    t=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $CREATE_T0}")
    # output rate: each payload line is ~40 chars, two port accesses (LSR poll, THR write) per char = ioreqs
    wait_count $g 2 15
    c0=$(last_count "$(serial_log $g)"); t0=$(up); sleep 4
    c1=$(last_count "$(serial_log $g)"); rate=$(awk "BEGIN{printf \"%.2f\", ($c1 - $c0) / ($(up) - $t0)}")
    p=$(dm_pid "$(domid $g)")
    hwm=$(vmhwm "$p")
    echo "XEN-BENCH dm=$dm create_to_marker_s=$t vmhwm_kb=${hwm:-unknown} lines_per_s=$rate thre_waits=$(last_thre_waits "$(serial_log $g)") (payload max 9.1 lines/s)"
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

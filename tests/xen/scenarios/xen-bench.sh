# Side by side: xl create -> payload marker, and the device model's peak RSS (VmHWM), qemu-xen vs ours.
for dm in qemu ours; do
  g=b$dm
  if boot_guest $g $dm; then
    t=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $CREATE_T0}")
    wait_count $g 3 15
    hwm=$(vmhwm "$(dm_pid "$(domid $g)")")
    echo "XEN-BENCH dm=$dm create_to_marker_s=$t vmhwm_kb=${hwm:-unknown}"
    ok "$dm measured"
  else
    echo "XEN-BENCH dm=$dm create_to_marker_s=FAIL vmhwm_kb=$(vmhwm "$(dm_pid "$(domid $g)")" || echo unknown)"
    bad "$dm guest did not boot"
  fi
  xl destroy $g 2>/dev/null
  cleanup_domains
done
finish

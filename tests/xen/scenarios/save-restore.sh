# save_restore NAME DM: xl save, then xl restore; the payload's counter must continue (no reboot, no restart at 1).
save_restore() {
  local name=$1 dm=$2 f=/var/lib/xen/$1.save before c1 t rc first
  if ! boot_guest "$name" "$dm"; then bad "guest did not boot"; diag "$name"; return; fi
  wait_count "$name" 3 15 || bad "counter did not reach 3 before the save"
  t=$(up); xl -v save "$name" "$f" > "/var/log/xen/xl-save-$name.log" 2>&1; rc=$?
  echo "xl save rc=$rc in $(since "$t")s, image $(wc -c < "$f" 2>/dev/null || echo 0) bytes"
  if [ $rc != 0 ]; then bad "xl save rc=$rc"; tail -20 "/var/log/xen/xl-save-$name.log"; diag "$name"; return; fi
  ok "xl save"
  domid "$name" >/dev/null && bad "domain still there after save" || ok "domain gone after save"
  before=$(serial_log "$name").before; mv "$(serial_log "$name")" "$before"
  c1=$(last_count "$before"); echo "last count before save: $c1"
  t=$(up); xl -vvv restore "$f" > "/var/log/xen/xl-restore-$name.log" 2>&1; rc=$?
  echo "xl restore rc=$rc in $(since "$t")s"
  if [ $rc != 0 ]; then
    bad "xl restore rc=$rc"
    grep -v ' debug: ' "/var/log/xen/xl-restore-$name.log" | grep -E -i 'error|fail|warn|cannot' | head -20
    mv "/var/log/xen/xl-restore-$name.log" "/var/log/xen/xl-create-$name.log"; diag "$name"; return
  fi
  ok "xl restore"
  if wait_count "$name" 1 15; then
    first=$(first_count "$(serial_log "$name")")
    wait_count "$name" $((first + 2)) 10
    echo "counter after restore: first $first, now $(last_count "$(serial_log "$name")")"
    grep -q XENCD-MARKER "$(serial_log "$name")" && bad "the guest booted again after restore"
    # the line interrupted by the save ends after the restore: the first whole one is c1+1 or c1+2
    [ "$c1" -ge 3 ] && [ "$first" -gt "$c1" ] && [ "$first" -le $((c1 + 5)) ] && ok "counter continued ($c1 -> $first)" \
      || bad "counter did not continue ($c1 before the save, $first after the restore)"
    [ "$(last_count "$(serial_log "$name")")" -gt "$first" ] && ok "counter keeps counting" || bad "counter stuck after restore"
  else
    bad "no counter output after restore"; mv "/var/log/xen/xl-restore-$name.log" "/var/log/xen/xl-create-$name.log"; diag "$name"
  fi
  rm -f "$f"
}

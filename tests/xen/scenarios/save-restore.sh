# save_restore NAME DM: xl save, then xl restore; the payload's counter must continue (no reboot, no restart at 1).
save_restore() {
  name=$1 dm=$2 f=/var/lib/xen/$1.save
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
  if wait_serial "$name" XENCD-COUNT 15; then
    first=$(grep -o 'XENCD-COUNT [0-9a-f]*' "$(serial_log "$name")" | head -1 | cut -d' ' -f2); first=$((0x$first))
    wait_count "$name" $((first + 2)) 10
    echo "counter after restore: first $first, now $(last_count "$(serial_log "$name")")"
    grep -q XENCD-MARKER "$(serial_log "$name")" && bad "the guest booted again after restore"
    [ "$first" -ge "$c1" ] && ok "counter continued ($c1 -> $first)" || bad "counter restarted ($c1 -> $first)"
    [ "$(last_count "$(serial_log "$name")")" -gt "$first" ] && ok "counter keeps counting" || bad "counter stuck after restore"
  else
    bad "no counter output after restore"; mv "/var/log/xen/xl-restore-$name.log" "/var/log/xen/xl-create-$name.log"; diag "$name"
  fi
  rm -f "$f"
}

# xl destroy leaves no device-model process and no xenstore leftovers; a second guest can be created after it.
gone_check() { # gone_check DOMID DMPID
  n=0; while [ -n "$2" ] && kill -0 "$2" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  if [ -n "$2" ] && kill -0 "$2" 2>/dev/null; then bad "device model pid $2 still alive 5 s after destroy"; else ok "device model process gone"; fi
  [ -z "$(dm_procs)" ] && ok "no device-model processes left" || bad "device-model processes left: $(dm_procs)"
  xenstore-exists "/local/domain/0/device-model/$1" 2>/dev/null && bad "/local/domain/0/device-model/$1 left in xenstore" || ok "no device-model/$1 in xenstore"
  xenstore-exists "/local/domain/$1" 2>/dev/null && bad "/local/domain/$1 left in xenstore" || ok "domain $1 gone from xenstore"
}
for g in ol1 ol2; do
  guest_cfg $g ours
  create $g
  create_wait $g 70
  d=$(domid $g); p=$(dm_pid "$d")
  echo "$g: domid=${d:-none} dm_pid=${p:-none} xl_rc=$XLRC"
  if [ "$XLRC" = 0 ]; then
    ok "$g: xl create"
    wait_serial $g XENCD-MARKER 45 && ok "$g: payload marker" || bad "$g: no payload marker"
  else
    bad "$g: xl create rc=$XLRC"; diag $g
  fi
  if [ -n "$d" ]; then
    xl destroy $g && ok "$g: xl destroy" || bad "$g: xl destroy rc=$?"
    gone_check "$d" "$p"
  else
    # a failed create must not leave a device model behind either
    sleep 1; [ -z "$(dm_procs)" ] && ok "$g: no device model left after the failed create" || bad "$g: device-model processes left after the failed create: $(dm_procs)"
  fi
done
finish

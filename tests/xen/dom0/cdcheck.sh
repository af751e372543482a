# cd_checks NAME: xl cd-eject / xl cd-insert on the running guest NAME (CD-ROM hdc, QMP id ide-5632), checked through
# the device model's QMP socket (query-block, query-fdsets) and the xenstore backend's params.
qmp_cmd() { qmp "$(qmp_sock "$d")" --timeout 10 --connect-wait 5 "$@" 2>&1; }
# json_array_items: each top-level object of the first "return" array in the input, one per line
json_array_items() {
  awk '/"return"/ {
    s = substr($0, index($0, "\"return\"")); p = index(s, "["); if (!p) next
    depth = 0; instr = 0; esc = 0; obj = ""
    for (k = p + 1; k <= length(s); k++) {
      c = substr(s, k, 1)
      if (instr) { obj = obj c; if (esc) esc = 0; else if (c == "\\") esc = 1; else if (c == "\"") instr = 0; continue }
      if (c == "\"") instr = 1
      if (c == "{") depth++
      if (depth > 0) obj = obj c
      if (c == "}") { depth--; if (depth == 0) { print obj; obj = "" } }
      if (c == "]" && depth == 0) exit
    }
  }'
}
# the emulated CD-ROM's query-block entry (qemu-xen also lists the qdisk backend's node for the same image)
cd_entry() { qmp_cmd '{"execute":"query-block"}' | json_array_items | grep '"ide-5632"'; }
cd_checks() {
  local e t rc fds f p
  d=$(domid "$1")
  [ -S "$(qmp_sock "$d")" ] && ok "QMP socket $(qmp_sock "$d") exists" || { bad "no QMP socket $(qmp_sock "$d")"; ls -la /var/run/xen; return; }
  e=$(cd_entry); echo "query-block ide-5632 at start: $e"
  echo "$e" | grep -q '"inserted"' && echo "$e" | grep -q cd1.iso && ok "query-block: cd1.iso inserted" || bad "query-block does not show cd1.iso inserted"
  t=$(up); xl cd-eject "$1" hdc > /run/cd.log 2>&1; rc=$?
  echo "xl cd-eject rc=$rc in $(since "$t")s"; [ $rc = 0 ] && ok "xl cd-eject" || { bad "xl cd-eject rc=$rc"; cat /run/cd.log; }
  e=$(cd_entry); echo "query-block ide-5632 after eject: $e"
  [ -n "$e" ] && ! echo "$e" | grep -q '"inserted"' && ok "no medium after eject" || bad "medium still inserted after eject (or no entry)"
  t=$(up); xl cd-insert "$1" hdc /xen/cd2.iso > /run/cd.log 2>&1; rc=$?
  echo "xl cd-insert rc=$rc in $(since "$t")s"; [ $rc = 0 ] && ok "xl cd-insert" || { bad "xl cd-insert rc=$rc"; cat /run/cd.log; }
  e=$(cd_entry); echo "query-block ide-5632 after insert: $e"
  fds=$(qmp_cmd '{"execute":"query-fdsets"}' | grep '"return"'); echo "query-fdsets: $fds"
  echo "$e" | grep -q '"inserted"' && ok "a medium is inserted" || bad "no medium inserted after cd-insert"
  # libxl passes the image as an fd: the file is /dev/fdset/N, whose opaque names the path
  if echo "$e" | grep -q cd2.iso; then ok "query-block names cd2.iso"
  elif f=$(echo "$e" | grep -o '"file": *"/dev/fdset/[0-9]*"' | grep -o '[0-9]*"$' | tr -d '"') && [ -n "$f" ] \
       && echo "$fds" | json_array_items | grep "\"fdset-id\": *$f[,}]" | grep -q 'cd2.iso'; then
    ok "query-block file is /dev/fdset/$f, whose fd is cd2.iso"
  else bad "QMP does not show cd2.iso as the inserted medium"; fi
  p=$(xenstore-ls -f /local/domain/0/backend 2>/dev/null | grep "/$d/5632/params " | head -1)
  echo "xenstore: $p"
  echo "$p" | grep -q cd2.iso && ok "xenstore backend params name cd2.iso" || bad "xenstore backend params do not name cd2.iso"
}

# Helpers for the Xen scenarios (busybox sh, sourced by dom0/init and by each scenario). Everything a scenario
# does goes through the real `xl`; guests are the CD-booted payload of guest/cdboot.S.
#
# A scenario prints its observations and ends by calling `finish` (exit 0 when nothing failed).
#   guest_cfg NAME DM [ISO]     write /run/cfg/NAME.cfg; DM = qemu (Debian's qemu-xen) | ours (/usr/bin/devicemodel)
#   create NAME                 start `xl -vvv create` in the background (log /var/log/xen/xl-create-NAME.log)
#   create_wait NAME SECS       wait for that xl to return; sets XLRC (124: still running after SECS)
#   wait_serial NAME TEXT SECS  wait until the guest's serial log contains TEXT; sets SEEN_AT (uptime)
#   last_count FILE             the guest counter's last value (decimal), 0 if none; first_count FILE
#   last_thre_waits FILE        how often the payload found the UART transmitter busy
#   domid NAME, dm_pid DOMID, vmhwm PID, dm_procs (pids of every device-model process)
#   ok MSG / bad MSG            record a passed / failed check (prints "ok: " / "FAIL: ")
#   diag NAME                   what to look at when a guest did not get far: xl, DM log, xl dmesg, serial
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk "BEGIN{printf \"%.2f\", $(up) - $1}"; }
FAILS=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
finish() { echo "checks failed: $FAILS"; [ "$FAILS" = 0 ]; exit $?; }
DMLOG_ITEMS=$(echo "${dmlog:-guest_errors,unimp}" | tr + ,)

serial_log() { echo "/var/log/xen/serial-$1.log"; }

# (helpers keep their variables local: scenarios use plain names too)
guest_cfg() {
  local name=$1 dm=$2 iso=${3:-/xen/cd1.iso}
  mkdir -p /run/cfg
  {
    echo "name = \"$name\""
    echo 'type = "hvm"'
    echo 'memory = 32'
    echo 'vcpus = 1'
    echo 'boot = "d"'
    echo "disk = [ \"format=raw, vdev=hdc, access=ro, devtype=cdrom, target=$iso\" ]"
    echo "serial = \"file:$(serial_log "$name")\""
    # QEMU TCG reports RDTSCP intercepts as RDTSC and has no NRIPS: keep the TSC unintercepted, hide RDTSCP
    echo 'tsc_mode = "native"'
    echo 'cpuid = "host,rdtscp=0"'
    echo 'vnc = 0'
    echo 'sdl = 0'
    echo 'vga = "none"'
    echo 'vif = []'
    echo 'on_poweroff = "destroy"'
    echo 'on_reboot = "destroy"'
    echo 'on_crash = "destroy"'
    if [ "$dm" = ours ]; then
      echo 'device_model_override = "/usr/bin/devicemodel"'
      echo 'device_model_version = "qemu-xen"'
      echo "device_model_args = [ \"-d\", \"$DMLOG_ITEMS\" ]"
    fi
  } > "/run/cfg/$name.cfg"
}

create() {
  rm -f "$(serial_log "$1")"
  CREATE_T0=$(up)
  xl -vvv create "/run/cfg/$1.cfg" > "/var/log/xen/xl-create-$1.log" 2>&1 &
  XLPID=$!
}

create_wait() {
  local n=0; while kill -0 "$XLPID" 2>/dev/null && [ $n -lt $(($2 * 5)) ]; do sleep 0.2; n=$((n + 1)); done
  if kill -0 "$XLPID" 2>/dev/null; then XLRC=124; return 124; fi
  wait "$XLPID"; XLRC=$?
  echo "xl create $1: rc=$XLRC after $(since "$CREATE_T0")s"
  return $XLRC
}

# Polling costs dom0 CPU (every grep is a fork+exec under TCG) that the device model needs for ioreqs:
# poll 5 times a second, and only grep once the file has grown.
wait_serial() {
  local f n=0
  f=$(serial_log "$1")
  while [ $n -lt $(($3 * 5)) ]; do
    if [ -s "$f" ] && grep -q "$2" "$f" 2>/dev/null; then SEEN_AT=$(up); return 0; fi
    sleep 0.2; n=$((n + 1))
  done
  return 1
}

# (the device model writes the log a byte at a time: only whole 8-digit numbers count, the last line may be partial)
last_count() {
  local h
  h=$(grep -o 'XENCD-COUNT [0-9a-f]\{8\}' "$1" 2>/dev/null | tail -1 | cut -d' ' -f2)
  [ -n "$h" ] && echo $((0x$h)) || echo 0
}
first_count() {
  local h
  h=$(grep -o 'XENCD-COUNT [0-9a-f]\{8\}' "$1" 2>/dev/null | head -1 | cut -d' ' -f2)
  [ -n "$h" ] && echo $((0x$h)) || echo 0
}
last_thre_waits() {
  local h
  h=$(grep -o 'THRE-WAITS [0-9a-f]\{8\}' "$1" 2>/dev/null | tail -1 | cut -d' ' -f2)
  [ -n "$h" ] && echo $((0x$h)) || echo 0
}

domid() { xl domid "$1" 2>/dev/null; }
dm_pid() { xenstore-read "/local/domain/$1/image/device-model-pid" 2>/dev/null; }
vmhwm() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
dm_procs() { pidof devicemodel xen-qemu-system-i386 2>/dev/null; }
qmp_sock() { echo "/var/run/xen/qmp-libxl-$1"; }

diag() {
  local name=$1 d f
  d=$(domid "$name")
  echo "---- diag $name (domid ${d:-none}) at uptime $(up)"
  echo "-- xl list"; xl list 2>&1 | tail -n +2
  echo "-- xl create log: errors/warnings and the last lines"
  grep -E -i 'error|fail|warn|fatal|cannot|unable' "/var/log/xen/xl-create-$name.log" 2>/dev/null \
    | grep -v -E 'loader probe failed|debug: ' | head -25
  echo "   ..."; grep -v ' debug: ' "/var/log/xen/xl-create-$name.log" 2>/dev/null | tail -12
  echo "-- device-model argv (from libxl): $(grep 'libxl__spawn_local_dm: Domain [0-9]*:  ' "/var/log/xen/xl-create-$name.log" 2>/dev/null | sed 's/.*:  //' | tr '\n' ' ')"
  for f in "/var/log/xen/xl-$name.log" "/var/log/xen/qemu-dm-$name.log"; do
    [ -f "$f" ] || continue
    echo "-- $f ($(wc -l < "$f") lines): first 40, last 40"
    if [ "$(wc -l < "$f")" -gt 80 ]; then head -40 "$f"; echo "   ..."; tail -40 "$f"; else cat "$f"; fi
  done
  echo "-- xl dmesg (guest and error lines)"
  xl dmesg 2>&1 | grep -E '\(d[1-9][0-9]*\)|rror|crash|Unhandled|emulation failed|ioreq' | tail -40
  echo "-- serial $(serial_log "$name") ($(wc -c < "$(serial_log "$name")" 2>/dev/null || echo 0) bytes), last lines"
  tail -4 "$(serial_log "$name")" 2>/dev/null
  echo "-- device-model processes: $(dm_procs)"
  echo "---- end diag $name"
}

diag_all() { local n; for n in $(xl list 2>/dev/null | awk 'NR > 2 {print $1}'); do diag "$n"; done; }

cleanup_domains() {
  local n
  for n in $(xl list 2>/dev/null | awk 'NR > 2 {print $1}'); do xl destroy "$n" >/dev/null 2>&1; done
  n=0; while [ -n "$(dm_procs)" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  [ -z "$(dm_procs)" ] || { echo "cleanup: device-model processes still alive: $(dm_procs); killing"; kill -KILL $(dm_procs); }
  xl dmesg -c > /dev/null 2>&1
}

# boot_guest NAME DM [ISO]: create, wait for xl and for the payload's marker. Prints a summary line
#   BOOT name=.. dm=.. xl_rc=.. create_to_marker_s=..|none
# and returns 0 when the marker appeared.
boot_guest() {
  guest_cfg "$1" "$2" "$3"
  create "$1"
  create_wait "$1" 70
  if [ "$XLRC" != 0 ]; then
    echo "BOOT name=$1 dm=$2 xl_rc=$XLRC create_to_marker_s=none"
    return 1
  fi
  if wait_serial "$1" XENCD-MARKER 60; then
    echo "BOOT name=$1 dm=$2 xl_rc=0 create_to_marker_s=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $CREATE_T0}")"
    return 0
  fi
  echo "BOOT name=$1 dm=$2 xl_rc=0 create_to_marker_s=none"
  return 1
}

# wait_count NAME N SECS: until the guest's counter reaches N
wait_count() {
  local n=0; while [ "$(last_count "$(serial_log "$1")")" -lt "$2" ] && [ $n -lt $(($3 * 4)) ]; do sleep 0.25; n=$((n + 1)); done
  [ "$(last_count "$(serial_log "$1")")" -ge "$2" ]
}

# host_step STEP [ARGS...]: run scenarios/$SCEN.host-client.sh STEP ARGS on the test host (real VNC clients on the
# forwarded port 5900; tests/src/host_steps.rs), print its output as "host STEP: ..." and "@@host STEP rc=N"; return N.
host_step() {
  local st=$1 f rc
  if [ -z "${hoststeps:-}" ]; then echo "@@host $st rc=125 (no host steps in this run)"; return 125; fi
  f=$(mktemp /tmp/hs.XXXXXX)
  echo "$SCEN $*" | nc "${hoststeps%:*}" "${hoststeps##*:}" > "$f" 2>&1
  grep -v '^@@host-rc=' "$f" | tr -d '\r' | sed "s/^/host $st: /"
  rc=$(sed -n 's/^@@host-rc=//p' "$f"); rm -f "$f"
  [ -n "$rc" ] || rc=126
  echo "@@host $st rc=$rc"
  return "$rc"
}

# Helpers for scenario host.sh scripts; sourced by L2 init in the scenario's directory
# (/scen/<name>, which holds initrd.cpio = the scenario's L3 initramfs).
# Environment: DM = ours|qemu (device model chosen for this run), NAME = scenario name.
KERNEL=${KERNEL:-/l3/vmlinux}
INITRD=${INITRD:-$PWD/initrd.cpio}
APPEND=${APPEND:-console=ttyS0 quiet pci=noearly panic=-1}
APPEND_EXTRA=${APPEND_EXTRA:-}
NO_REBOOT=${NO_REBOOT--no-reboot}
MEM=${MEM:-256M}
SMP=${SMP:-1}

# run_dm ours|qemu ARGS...: run that device model with ARGS, print its exit status, return it.
run_dm() {
  kind=$1; shift
  case $kind in
    ours) /bin/devicemodel "$@" ;;
    # QEMU runs the same command line; -M pc -cpu host make it the machine ours models.
    qemu) /usr/bin/qemu-system-x86_64 -no-user-config -M pc -cpu host "$@" ;;
    *) echo "@@harness: unknown device model '$kind'"; return 125 ;;
  esac
  rc=$?
  echo "@@dm-exit rc=$rc"
  return $rc
}
dm() { run_dm "$DM" "$@"; }
ours() { run_dm ours "$@"; }
qemu() { run_dm qemu "$@"; }

# boot [EXTRA DM ARGS...]: boot L3 Linux with this scenario's initramfs on $DM.
# Knobs: MEM SMP NO_REBOOT (set empty to allow guest reboots) APPEND_EXTRA.
boot() {
  dm -accel kvm -m "$MEM" -smp "$SMP" -nodefaults -display none -serial stdio $NO_REBOOT \
     -kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND${APPEND_EXTRA:+ $APPEND_EXTRA}" "$@"
}

# boot_until COUNT TEXT [EXTRA DM ARGS...]: boot; once COUNT output lines contain TEXT,
# stop the device model (SIGTERM to its session) and print "@@dm-stopped". If the device
# model exits first, its status is returned as usual. Output reaches the console live.
boot_until() {
  n=$1; text=$2; shift 2
  out=/tmp/until.$$; : > $out
  export DM KERNEL INITRD APPEND APPEND_EXTRA NO_REBOOT MEM SMP
  setsid sh -c '. /bin/harness.sh; boot "$@"' boot_until "$@" > $out 2>&1 &
  bp=$!
  echo $bp >> /tmp/sessions   # its own session: L2 init kills it too if the watchdog fires
  tail -f $out & tp=$!
  st=running
  while kill -0 $bp 2>/dev/null; do
    if [ "$(grep -cF -- "$text" $out)" -ge "$n" ]; then
      kill -TERM -$bp 2>/dev/null; sleep 1; kill -9 -$bp 2>/dev/null; st=stopped; break
    fi
    sleep 0.2
  done
  wait $bp; rc=$?
  sleep 1; kill $tp 2>/dev/null; wait $tp 2>/dev/null
  rm -f $out
  if [ $st = stopped ]; then echo "@@dm-stopped after $n matches"; return 0; fi
  return $rc
}

# ---- background device model, for scenarios that act while the guest runs ----
# bg CMD [ARGS...]: run a harness command (boot, dm, ours, qemu) in the background, in its own
# session (the L2 watchdog kills it too), output into $BG_OUT and live on the console.
# Sets BG_PID. Use one at a time; bg_wait/bg_stop end it. BG_QUIET=1: no live copy.
# BG_STDIN=FILE: its standard input (default /dev/null), e.g. a FIFO (see guest_input).
# guest_input: makes /tmp/guest.in a FIFO held open for writing (fd 8) and sets BG_STDIN to it, so
# with -serial stdio `guest_say TEXT` types a line on the guest's serial console.
guest_input() { rm -f /tmp/guest.in; mkfifo /tmp/guest.in; exec 8<>/tmp/guest.in; BG_STDIN=/tmp/guest.in; }
guest_say() { echo "$*" >&8; }
BG_N=0
bg() {
  BG_N=$((BG_N + 1)); BG_OUT=/tmp/bg.$$.$BG_N; : > $BG_OUT
  export DM KERNEL INITRD APPEND APPEND_EXTRA NO_REBOOT MEM SMP
  setsid sh -c '. /bin/harness.sh; "$@"' bg "$@" < "${BG_STDIN:-/dev/null}" > $BG_OUT 2>&1 &
  BG_PID=$!
  echo $BG_PID >> /tmp/sessions
  if [ -n "${BG_QUIET:-}" ]; then BG_TAIL=; else bg_follow $BG_PID $BG_OUT & BG_TAIL=$!; fi
}

# bg_follow PID FILE: copy FILE's new lines to stdout until PID is gone, then the rest (unlike
# busybox tail -f, which polls once a second, nothing written just before the exit is lost).
bg_follow() {
  _s=0
  while :; do
    _alive=1; kill -0 $1 2>/dev/null || _alive=0
    _n=$(wc -l < $2)
    if [ $_n -gt $_s ]; then sed -n "$((_s + 1)),${_n}p" $2; _s=$_n; fi
    if [ $_alive = 0 ]; then sed -n "$((_s + 1)),\$p" $2; return; fi
    sleep 0.2
  done
}

# wait_out COUNT TEXT SECS: wait until COUNT lines of the background output contain TEXT.
# Returns 1 (printing @@wait-timeout / @@wait-dm-exited) if that does not happen in SECS
# seconds or the device model exits first.
wait_out() {
  _n=$1; _t=$2; _end=$(( $(date +%s) + $3 ))
  while [ "$(grep -cF -- "$_t" $BG_OUT)" -lt "$_n" ]; do
    if ! kill -0 $BG_PID 2>/dev/null; then
      [ "$(grep -cF -- "$_t" $BG_OUT)" -ge "$_n" ] && return 0
      echo "@@wait-dm-exited before $_n x '$_t'"; return 1
    fi
    if [ "$(date +%s)" -ge "$_end" ]; then echo "@@wait-timeout after $3s for $_n x '$_t'"; return 1; fi
    sleep 0.1
  done
}

# bg_wait SECS: wait for the background device model to exit; returns its status, or 124
# after killing it if it is still running after SECS seconds.
bg_wait() {
  _end=$(( $(date +%s) + $1 ))
  while kill -0 $BG_PID 2>/dev/null; do
    if [ "$(date +%s)" -ge "$_end" ]; then echo "@@bg-wait: still running after $1s, killing it"; bg_stop; return 124; fi
    sleep 0.1
  done
  wait $BG_PID; _rc=$?
  [ -z "$BG_TAIL" ] || wait $BG_TAIL 2>/dev/null
  return $_rc
}

# bg_stop: kill the background device model's session.
bg_stop() {
  kill -TERM -$BG_PID 2>/dev/null; sleep 0.5; kill -9 -$BG_PID 2>/dev/null
  wait $BG_PID 2>/dev/null
  [ -z "$BG_TAIL" ] || wait $BG_TAIL 2>/dev/null
}

# bg_lines TEXT: the background output lines containing TEXT, without carriage returns.
bg_lines() { grep -F -- "$1" $BG_OUT | tr -d '\r'; }

# q LABEL SOCKET [qmp args...]: the qmp client (see tests/src/bin/qmp.rs), every output line
# prefixed with "qmp LABEL: ". Returns the client's status.
q() {
  _l=$1; shift; _f=$(mktemp /tmp/q.XXXXXX)
  { /bin/qmp "$@"; echo "@@qmp-rc=$?"; } > $_f 2>&1
  grep -v '^@@qmp-rc=' $_f | sed "s/^/qmp $_l: /"
  _rc=$(sed -n 's/^@@qmp-rc=//p' $_f); rm -f $_f
  return $_rc
}

# host_step STEP [ARGS...]: run `host-client.sh STEP ARGS` of this scenario on the test host
# (real VNC clients on the forwarded port; tests/src/host_steps.rs), print its output as
# "host STEP: ..." lines and "@@host STEP rc=N"; returns N (125: no host steps in this run).
host_step() {
  _st=$1
  if [ -z "${HOSTSTEPS:-}" ]; then echo "@@host $_st rc=125 (no host steps: scenario has no host-client.sh)"; return 125; fi
  _f=$(mktemp /tmp/hs.XXXXXX)
  echo "$NAME $*" | nc "${HOSTSTEPS%:*}" "${HOSTSTEPS##*:}" > $_f 2>&1
  grep -v '^@@host-rc=' $_f | tr -d '\r' | sed "s/^/host $_st: /"
  _rc=$(sed -n 's/^@@host-rc=//p' $_f); rm -f $_f
  [ -n "$_rc" ] || _rc=126
  echo "@@host $_st rc=$_rc"
  return $_rc
}

# Default when the scenario has neither host.sh nor cmdline: one boot.
run_scenario() {
  if [ -f host.sh ]; then . ./host.sh
  elif [ -f cmdline ]; then eval "dm $(grep -v '^#' cmdline | tr '\n' ' ')"
  else boot
  fi
}

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

# Default when the scenario has neither host.sh nor cmdline: one boot.
run_scenario() {
  if [ -f host.sh ]; then . ./host.sh
  elif [ -f cmdline ]; then eval "dm $(grep -v '^#' cmdline | tr '\n' ' ')"
  else boot
  fi
}

# Runs in L2 (sourced by the harness as this "scenario"'s host.sh): the same L3 guest under our
# device model and under QEMU, alternating, ROUNDS times each. For each run it prints
#   BENCH dm=<ours|qemu> launch_to_marker_s=<s> vmhwm_kb=<kB> rss_beyond_ram_kb=<kB> pio_us=<us>
# launch_to_marker: from just before exec to the guest's first line (L2 /proc/uptime, 10 ms).
# vmhwm: the device model's peak RSS. rss_beyond_ram: its RSS at the snapshot point minus the
# resident part of guest RAM (mappings at least half the guest RAM size), read from smaps.
ROUNDS=${ROUNDS:-3}
MEMMB=256
up() { cut -d' ' -f1 /proc/uptime; }
# launch ours|qemu [EXTRA KERNEL ARGS] [-- EXTRA DM ARGS...]: the same command line on both.
launch() {
  kind=$1; extra=$2; shift 2
  args="-accel kvm -m ${MEMMB}M -smp 1 -nodefaults -display none -serial stdio -no-reboot -kernel /l3/vmlinux -initrd $PWD/initrd.cpio"
  case $kind in
    ours) exec /bin/devicemodel $args -append "console=ttyS0 quiet pci=noearly panic=-1 $extra" "$@" ;;
    qemu) exec /usr/bin/qemu-system-x86_64 -no-user-config -M pc -cpu host $args -append "console=ttyS0 quiet pci=noearly panic=-1 $extra" "$@" ;;
  esac
}
# storage ours|qemu: IDE throughput lines, tagged with the device model.
storage() {
  launch $1 bench=storage -drive file=$PWD/disk.raw,if=ide,index=0,media=disk,format=raw,cache=writeback \
    -drive file=$PWD/cd.iso,if=ide,index=2,media=cdrom,format=raw 2>&1 | grep '^BLK ' | sed "s/^BLK /BENCH-BLK dm=$1 dev=/"
}
one() {
  kind=$1; out=/tmp/bench.out; : > $out
  t0=$(up)
  launch $kind "" > $out 2>&1 &
  pid=$!
  tm=""; hwm=0; beyond=""
  while kill -0 $pid 2>/dev/null; do
    h=$(awk '/^VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null); [ -n "$h" ] && hwm=$h
    if [ -z "$tm" ] && grep -q BENCH-MARKER $out; then tm=$(up); fi
    if [ -z "$beyond" ] && grep -q BENCH-SNAPSHOT $out; then
      beyond=$(awk -v lim=$((MEMMB * 1024 / 2)) '
        /^[0-9a-f]+-[0-9a-f]+ / { big = 0 }
        /^Size:/ { big = ($2 >= lim) }
        /^Rss:/ { if (big) ram += $2; else other += $2 }
        END { print other }' /proc/$pid/smaps 2>/dev/null)
    fi
    sleep 0.05
  done
  wait $pid
  pio=$(sed -n 's/.*us_per_exit=\([0-9.]*\).*/\1/p' $out)
  lm=$(awk -v a=$t0 -v b=$tm 'BEGIN { if (b == "") print "none"; else printf "%.2f", b - a }')
  echo "BENCH dm=$kind launch_to_marker_s=$lm vmhwm_kb=$hwm rss_beyond_ram_kb=${beyond:-none} pio_us=${pio:-none}"
}
# The first L3 boot in an L2 session is faster than later ones (page cache, TCG code cache): warm
# up once with each, then alternate.
# BENCH_ONLY=storage runs the IDE rounds alone (after one warm-up of each, as above).
if [ "${BENCH_ONLY:-}" = storage ]; then
  storage ours >/dev/null; storage qemu >/dev/null
  for i in $(seq 1 $ROUNDS); do storage ours; storage qemu; done
  return 0 2>/dev/null || exit 0
fi
one ours >/dev/null; one qemu >/dev/null
for i in $(seq 1 $ROUNDS); do one ours; one qemu; done
for i in $(seq 1 $ROUNDS); do storage ours; storage qemu; done
# exitcost KIND: the same 64 KiB firmware payload times port and MMIO reads with rdtsc.
exitcost() {
  img=$PWD/exitcost.bin
  case $1 in
    minivmm) $PWD/minivmm $img ;;
    ours) /bin/devicemodel -accel kvm -m 64M -nodefaults -display none -serial stdio -bios $img -device isa-debug-exit,iobase=0xf4,iosize=4 ;;
    qemu) /usr/bin/qemu-system-x86_64 -no-user-config -M pc -cpu host -accel kvm -m 64M -nodefaults -display none -serial stdio \
            -bios $img -device isa-debug-exit,iobase=0xf4,iosize=4 ;;
  esac 2>&1 | tr -d '\r' | grep '^EXITCOST' | sed "s/^EXITCOST /BENCH-EXIT dm=$1 /"
}
for i in $(seq 1 $((ROUNDS * 2))); do exitcost minivmm; exitcost ours; exitcost qemu; done

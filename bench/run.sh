#!/bin/bash
# Benchmark: the same L3 guest on our device model and on QEMU, side by side in ONE L2 session
# under nested QEMU (see tests/README.md for the nesting). Prints a table and, with --write,
# updates docs/benchmarks.md.
#   bench/run.sh [--write]        ROUNDS=3 by default
#   BENCH_ONLY=storage bench/run.sh   only the IDE throughput rounds (no launch/RSS/exit-cost runs)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
tests/scripts/setup.sh >/dev/null
. "${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests/setup.env"
tests/scripts/build-images.sh >/dev/null 2>"$ROOT/target/bench-build.log" || { cat "$ROOT/target/bench-build.log" >&2; exit 1; }
OUT=$ROOT/target/bench; rm -rf "$OUT"; mkdir -p "$OUT/l3/bin" "$OUT/ov/scen/bench"
# L3 initramfs: busybox + the exit-cost probe.
cp /bin/busybox "$OUT/l3/bin/busybox"
for a in sh mount mkdir cut sleep poweroff echo grep cat seq insmod; do ln -sf busybox "$OUT/l3/bin/$a"; done
gcc -O2 -static -o "$OUT/l3/bin/pio" tests/guest-tools/pio.c
gcc -O2 -static -o "$OUT/l3/bin/blkbench" bench/blkbench.c
# The storage run's drivers: ata_piix for the IDE controller, sd_mod/sr_mod for disk and CD.
mkdir -p "$OUT/l3/mods"
python3 tests/scripts/resolve_modules.py "$KMOD" ata_piix sd_mod sr_mod | while read -r m; do
  cp "$m" "$OUT/l3/mods/"; basename "$m" .ko; done > "$OUT/l3/mods/order"
# The exit-cost firmware image and the minimal VMM that is its baseline.
gcc -c -o "$OUT/exitcost.o" bench/exitcost.S && objcopy -O binary "$OUT/exitcost.o" "$OUT/ov/scen/bench/exitcost.bin"
gcc -O2 -static -o "$OUT/ov/scen/bench/minivmm" bench/minivmm.c
# Images made at run time: random bytes, so no layer can shortcut zeroes.
head -c $((24 << 20)) /dev/urandom > "$OUT/ov/scen/bench/disk.raw"
head -c $((24 << 20)) /dev/urandom > "$OUT/ov/scen/bench/cd.iso"
install -m 755 bench/l3-init "$OUT/l3/init"
(cd "$OUT/l3" && find . | cpio -o -H newc --quiet) > "$OUT/ov/scen/bench/initrd.cpio"
# The harness's L2 init runs /scen/<name>/host.sh for each name in /scen/list.
cp bench/l2-bench.sh "$OUT/ov/scen/bench/host.sh"
echo bench > "$OUT/ov/scen/list"; echo 900 > "$OUT/ov/scen/bench/timeout"
printf 'DM=ours\nROUNDS=%s\nBENCH_ONLY=%s\n' "${ROUNDS:-3}" "${BENCH_ONLY:-}" > "$OUT/ov/scen/env"
(cd "$OUT/ov" && find . | cpio -o -H newc --quiet) > "$OUT/overlay.cpio"
cat target/nested/l2-base.cpio target/nested/l2-qemu.cpio "$OUT/overlay.cpio" > "$OUT/l2.cpio"
echo "bench: booting L1 (QEMU TCG) -> L2 -> ours and QEMU${BENCH_ONLY:+ ($BENCH_ONLY only)}" >&2
timeout 1200 qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 1 -nodefaults -no-user-config -display none \
  -serial stdio -no-reboot -kernel "$VMLINUZ" -initrd "$OUT/l2.cpio" -append "console=ttyS0 panic=-1 quiet" \
  </dev/null > "$OUT/console.log" 2>&1 || true
grep -E '^BENCH(-BLK|-EXIT)? ' "$OUT/console.log" | tr -d '\r' > "$OUT/results.txt" || { echo "bench: no results; see $OUT/console.log" >&2; exit 1; }
python3 bench/report.py "$OUT/results.txt" "$@"

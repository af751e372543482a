#!/bin/bash
# Display benchmark, ours vs QEMU in ONE L2 session: the nested scenario display-bench
# (tests/scenarios/display-bench) boots the same L3 guest (bochs-drm, -device VGA, -vnc :0) on each
# device model; vncbench (tests/src/bin/vncbench.rs) measures in L2: device-model CPU while the
# guest idles with a client attached, bytes of one full update, frames/s and bytes per frame while
# the guest redraws the whole 1024x768 screen through DRM (fbpat drmloop).
#   bench/display.sh            prints the BENCH-DISPLAY lines (record them in docs/benchmarks.md)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${NESTED_OUT:-target/nested-bench-display}
NESTED_WORKERS=1 NESTED_OUT=$OUT SCENARIOS=display-bench tests/scripts/run-scenarios.sh >&2 || true
grep -h 'BENCH-DISPLAY' "$OUT/results/display-bench.log" | grep -v 'echo' | sed 's/^\[ *[0-9.]*\] //'

#!/bin/bash
# Builds every cargo-fuzz target and runs each for a short time (FUZZ_SECONDS, default 20):
# a smoke test that the fuzzers still build and that nothing in reach of a quick run panics.
# Long runs: cd devices/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run bus
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz >&2
export RUSTC_BOOTSTRAP=1   # cargo-fuzz needs -Z flags; the machine has only a stable toolchain
fail=0
for crate in devices devicemodel; do
  dir=$crate/fuzz
  [ -d "$dir" ] || continue
  for t in $(cd "$dir" && cargo fuzz list); do
    echo "--- fuzz $crate/$t for ${FUZZ_SECONDS:-20}s"
    if ! (cd "$dir" && cargo fuzz run "$t" -- -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=1 2>&1 | tail -4); then
      echo "--- fuzz $crate/$t FAILED"; fail=1
    fi
  done
done
exit $fail

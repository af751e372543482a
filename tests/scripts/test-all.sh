#!/bin/bash
# The whole test suite: host prerequisites, workspace unit tests, then the nested suite
# (real guests on our device model inside nested QEMU). Used by .ci/run.
#   DM=qemu            run the nested scenarios on QEMU instead of our device model
#   SCENARIOS="a b"    only these nested scenarios
#   NESTED_WORKERS=n   parallel L1 QEMUs (default 2)
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$SECONDS
fail=()
step() { # step NAME CMD...
  local name=$1 t=$SECONDS rc; shift
  echo "=== $name"
  "$@"; rc=$?
  echo "=== $name: $([ $rc = 0 ] && echo ok || echo "FAILED (rc=$rc)") in $((SECONDS - t))s"
  [ $rc = 0 ] || fail+=("$name")
  return $rc
}
step "setup (tests/scripts/setup.sh)" tests/scripts/setup.sh || { echo "setup failed: the nested suite cannot run"; exit 1; }
step "format (cargo fmt --all --check)" cargo fmt --all --check
step "lints (cargo clippy --workspace --all-targets -- -D warnings)" cargo clippy --workspace --all-targets -- -D warnings
step "unit tests (cargo test --workspace --exclude nested-tests)" cargo test --workspace --exclude nested-tests
step "harness unit tests (cargo test -p nested-tests --lib)" cargo test -p nested-tests --lib
step "nested suite (cargo test -p nested-tests --test nested, DM=${DM:-ours})" cargo test -p nested-tests --test nested
[ -f target/nested/results/summary.txt ] && { echo "=== nested summary"; cat target/nested/results/summary.txt; }
step "Xen suite (cargo test -p nested-tests --test xen: real xl under nested Xen 4.17)" cargo test -p nested-tests --test xen
[ -f target/xen/results/summary.txt ] && { echo "=== Xen summary"; cat target/xen/results/summary.txt; }
step "fuzz smoke (tests/scripts/fuzz-smoke.sh, ${FUZZ_SECONDS:-20}s per target)" tests/scripts/fuzz-smoke.sh
echo "=== total $((SECONDS - T0))s"
if [ ${#fail[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${fail[@]}"; exit 1; fi
echo "ALL PASSED"

#!/bin/bash
# Run some nested scenarios (all when none given), without the unit tests:
#   tests/scripts/run-scenarios.sh boot-to-shell pci-chipset
#   DM=qemu tests/scripts/run-scenarios.sh reboot
# Logs: target/nested/results/<name>.log, L2 consoles: target/nested/worker-N/console.log
set -euo pipefail
cd "$(dirname "$0")/../.."
SCENARIOS="${*:-${SCENARIOS:-}}" exec cargo test -p nested-tests --test nested

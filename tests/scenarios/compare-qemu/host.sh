# The same guest and command line on our device model and on QEMU, one after the other.
# Informational: L2 wall seconds per launch, the guest's uptime at its marker, and the
# guest-visible PCI differences. Only "both boot and power off" is asserted; performance
# ratios belong in docs/benchmarks.md, not in pass/fail tests.
up() { cut -d' ' -f1 /proc/uptime; }
for k in ours qemu; do
  a=$(up); run_boot() { DM=$k; boot; }; run_boot > /tmp/$k.out 2>&1; rc=$?; b=$(up)
  sed "s/^/$k| /" /tmp/$k.out
  echo "$k: rc=$rc wall=$(awk "BEGIN{print $b - $a}")s guest-uptime-at-marker=$(sed -n 's/^L3-UP //p' /tmp/$k.out)"
done
grep '^pci ' /tmp/ours.out > /tmp/ours.pci; grep '^pci ' /tmp/qemu.out > /tmp/qemu.pci
diff /tmp/qemu.pci /tmp/ours.pci | grep '^[-+]pci' | sed 's/^/pci-diff (-qemu +ours): /'
true

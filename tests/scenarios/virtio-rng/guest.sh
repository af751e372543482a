# Linux's virtio_pci + virtio_rng on the device: /dev/hwrng reads random bytes and the device's
# interrupts count up in /proc/interrupts (MSI-X: virtio0-config and virtio0-input; INTx: one
# shared IO-APIC line named virtio0).
mode=msix; grep -q vrng=intx /proc/cmdline && mode=intx
for d in /sys/bus/pci/devices/*; do
  [ "$(cat $d/vendor)" = 0x1af4 ] || continue
  drv=$(readlink $d/driver); echo "vdev $mode ${d##*/} $(cat $d/vendor) $(cat $d/device) driver=${drv##*/}"
done
echo "rng-current $mode $(cat /sys/class/misc/hw_random/rng_current)"
# Sum of the per-CPU counts of the /proc/interrupts line whose name is $1.
count() { awk -v n="$1" '$NF == n { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }
# The controller and trigger columns of that line (e.g. "IO-APIC 10-fasteoi").
chip() { awk -v n="$1" '$NF == n { c = ""; for (i = 2; i < NF; i++) if ($i !~ /^[0-9]+$/) c = c " " $i; print c }' /proc/interrupts; }
grep virtio /proc/interrupts | sed 's/  */ /g; s/^/irqline /'
if [ $mode = msix ]; then name=virtio0-input; else name=virtio0; fi
before=$(count $name)
dd if=/dev/hwrng of=/tmp/r1 bs=64 count=8 2>/dev/null
dd if=/dev/hwrng of=/tmp/r2 bs=64 count=8 2>/dev/null
after=$(count $name)
echo "rng-read $mode $(cat /tmp/r1 | wc -c) $(cat /tmp/r2 | wc -c)"
cmp -s /tmp/r1 /tmp/r2 && echo "rng-same $mode" || echo "rng-differ $mode"
od -An -tx1 /tmp/r1 | tr -d ' \n' | grep -q '^0*$' && echo "rng-all-zero $mode"
echo "irq $mode $name before=${before:-none} after=${after:-none} chip=$(chip $name)"
[ -n "$before" ] && [ "$after" -gt "$before" ] && echo "IRQ-COUNTED-UP $mode $name"
case "$mode $(chip $name)" in "intx "*IO-APIC*fasteoi*) echo "IRQ-INTX-LEVEL $mode IO-APIC fasteoi" ;; esac
[ $mode = msix ] && [ -n "$(count virtio0-config)" ] && echo "IRQ-CONFIG-VECTOR $mode virtio0-config"
exit 0

# QEMU's edu device behind INTx, driven by Linux's own uio_pci_generic: interrupts counted by
# the driver and in /proc/interrupts, then with the device's PIRQ re-routed while asserted.
dev=$(grep -l 0x11e8 /sys/bus/pci/devices/*/device | head -1); dev=${dev%/device}; dev=${dev##*/}
[ -n "$dev" ] || { echo "edu missing"; exit 1; }
echo "edu at $dev pin=$(od -An -tx1 -j61 -N1 /sys/bus/pci/devices/$dev/config | tr -d ' ')"
echo "1234 11e8" > /sys/bus/pci/drivers/uio_pci_generic/new_id
[ -e /dev/uio0 ] || sleep 1
echo "driver $(basename $(readlink /sys/bus/pci/devices/$dev/driver))"
irq=$(cat /sys/bus/pci/devices/$dev/irq)
uiotest irqs $dev /dev/uio0 5 || exit 1
uiotest reroute $dev /dev/uio0 || exit 1
# The kernel's own count for the driver's line (all CPUs).
set -- $(grep "uio_pci_generic" /proc/interrupts)
shift; total=0
while [ $# -gt 0 ]; do case $1 in *[!0-9]*) break;; *) total=$((total + $1)); shift;; esac; done
echo "procirq irq=$irq uio_pci_generic total=$total"

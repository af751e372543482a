# Two boots with QEMU's virtio-rng-pci at 00:05.0 (modern interface, as QEMU makes it with
# disable-legacy=on): first with MSI-X (QEMU's default 2 vectors), then with vectors=0, where the
# device interrupts through INTA# and its ISR. The guest says which run it is from the kernel
# command line.
APPEND_EXTRA="vrng=msix"; boot -device virtio-rng-pci,addr=5,disable-legacy=on; rc1=$?
APPEND_EXTRA="vrng=intx"; boot -device virtio-rng-pci,addr=5,disable-legacy=on,vectors=0; rc2=$?
exit $((rc1 | rc2))

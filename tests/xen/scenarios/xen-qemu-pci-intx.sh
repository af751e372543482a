# Reference for xen-ours-pci-intx: the same Linux guest and edu device on Debian's qemu-xen (which has edu built in).
. /xen/scenarios/pci-intx.sh
pci_intx qi qemu
finish

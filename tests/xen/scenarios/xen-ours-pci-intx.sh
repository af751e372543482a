# Issue 7: a Linux HVM guest counts INTx interrupts of the edu device served by ours (set_pci_intx_level DMOPs).
. /xen/scenarios/pci-intx.sh
pci_intx oi ours
finish

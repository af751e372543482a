# xen-qemu-vga-cirrus: vga="cirrus" with vnc=1 on qemu (see vga.sh)
. /xen/scenarios/vga.sh
vga_check vqc qemu cirrus
finish

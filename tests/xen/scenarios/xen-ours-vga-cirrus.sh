# xen-ours-vga-cirrus: vga="cirrus" with vnc=1 on ours (see vga.sh)
. /xen/scenarios/vga.sh
vga_check voc ours cirrus
finish

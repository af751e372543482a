# xen-ours-vga-std: vga="stdvga" with vnc=1 on ours (see vga.sh)
. /xen/scenarios/vga.sh
vga_check vos ours stdvga
finish

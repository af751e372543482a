# xen-ours-vga-linux: the Linux guest's framebuffer pattern over VNC, vga="stdvga" on ours (see vga.sh)
. /xen/scenarios/vga.sh
vga_linux vol ours stdvga
finish

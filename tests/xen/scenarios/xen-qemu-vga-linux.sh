# xen-qemu-vga-linux: the Linux guest's framebuffer pattern over VNC, vga="stdvga" on qemu (see vga.sh)
. /xen/scenarios/vga.sh
vga_linux vql qemu stdvga
finish

# xen-qemu-vga-std: vga="stdvga" with vnc=1 on qemu (see vga.sh)
. /xen/scenarios/vga.sh
vga_check vqs qemu stdvga
finish

# libxl's argv for vga="cirrus" (-device cirrus-vga,vgamem_mb=8); no VGA BIOS is needed for a
# -kernel boot (romfile= is QEMU's "no ROM").
MEM=256M; boot -device cirrus-vga,vgamem_mb=8,romfile=

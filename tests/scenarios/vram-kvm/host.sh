# -d unimp: our info lines, among them the KVM slot the VRAM got when the guest decoded BAR0.
# -kernel boot: no VGA BIOS runs, so the card needs no ROM (L2 has none).
ARGS="-device VGA,romfile="; [ "$DM" = ours ] && ARGS="$ARGS -d unimp"
MEM=256M
boot $ARGS

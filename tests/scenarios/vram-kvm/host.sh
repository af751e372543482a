# -d unimp: our info lines, among them the KVM slot the VRAM got when the guest decoded BAR0.
ARGS="-device VGA"; [ "$DM" = ours ] && ARGS="$ARGS -d unimp"
MEM=256M
boot $ARGS

# The compressed bzImage (the same kernel as /l3/vmlinux), for the 64-bit boot protocol path.
set -eu
. "${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests/setup.env"
cp "$VMLINUZ" "$OUT/bzImage"

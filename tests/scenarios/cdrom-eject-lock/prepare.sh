set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
echo "locked medium" > "$D/id.txt"
head -c 65536 /dev/urandom > "$D/data.bin"
xorriso -as mkisofs -quiet -V CDROM_LOCK -R -o "$OUT/lock.iso" "$D" 2>/dev/null

# Three small ISOs (labels CDROM_A/B/C, different sizes and random contents) for medium
# changes; `sums` lists "<id> <md5 of data.bin> <size in 512-byte sectors>" per ISO.
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
: > "$OUT/sums"
for x in A:100 B:300 C:700; do
  id=${x%%:*}; kb=${x#*:}
  mkdir -p "$D/$id"
  echo "ISO-$id" > "$D/$id/id.txt"
  head -c $((kb * 1024)) /dev/urandom > "$D/$id/data.bin"
  xorriso -as mkisofs -quiet -V "CDROM_$id" -R -o "$OUT/$(echo $id | tr A-Z a-z).iso" "$D/$id" 2>/dev/null
  echo "ISO-$id $(md5sum < "$D/$id/data.bin" | cut -d' ' -f1) $(( $(stat -c %s "$OUT/$(echo $id | tr A-Z a-z).iso") / 512 ))" >> "$OUT/sums"
done

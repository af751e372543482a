# An ISO 9660 (Rock Ridge) image with random files and a nested directory, made at build
# time; `sums` holds their md5sums as the guest will print them (sorted ./paths).
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
mkdir -p "$D/t/docs/nested/deeper"
head -c 307200 /dev/urandom > "$D/t/random.bin"
head -c 1048576 /dev/urandom > "$D/t/big.bin"
head -c 4097 /dev/urandom > "$D/t/docs/odd-size.bin"
head -c 2048 /dev/urandom > "$D/t/docs/nested/one-sector.bin"
echo "hello from the iso" > "$D/t/docs/nested/deeper/hello.txt"
: > "$D/t/empty"
(cd "$D/t" && find . -type f | LC_ALL=C sort | xargs md5sum) > "$OUT/sums"
xorriso -as mkisofs -quiet -V CDROM_ISO_TEST -R -o "$OUT/test.iso" "$D/t" 2>/dev/null
echo $(( $(stat -c %s "$OUT/test.iso") / 512 )) > "$OUT/sectors"

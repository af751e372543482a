# Boot media for the SeaBIOS part, made at build time from boot.S (GNU as, 16-bit):
#   cd.iso               El Torito no-emulation image of the payload
#   bios.bin             SeaBIOS from the build host (/usr/share/seabios/bios.bin)
#   vgabios-stdvga.bin   SeaVGABIOS's stdvga build from the same package
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
as --32 -o "$D/boot.o" boot.S
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$D/boot.bin" "$D/boot.o"
mkdir -p "$D/cd"
python3 - "$D" <<'PY'
import sys
d = sys.argv[1]
b = open(d + '/boot.bin', 'rb').read()
assert len(b) <= 2048, "payload does not fit one CD sector"
open(d + '/cd/cdboot.bin', 'wb').write(b.ljust(2048, b'\0'))
PY
xorriso -as mkisofs -quiet -V STDVGA_CD -b cdboot.bin -no-emul-boot -boot-load-size 4 \
  -boot-info-table -o "$OUT/cd.iso" "$D/cd" 2>/dev/null
cp /usr/share/seabios/bios.bin /usr/share/seabios/vgabios-stdvga.bin "$OUT/"

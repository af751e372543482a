# Boot media for SeaBIOS, made at build time from boot.S (GNU as, 16-bit):
#   mbr.bin  the payload as an MBR (0x55AA) + a second sector holding a marker string
#   cd.iso   El Torito no-emulation boot image: the payload, and in the boot file's second
#            2 KiB a marker string (the payload finds it through the boot info table)
#   bios.bin SeaBIOS from the build host (/usr/share/seabios/bios.bin, 128 KiB)
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
as --32 -o "$D/boot.o" boot.S
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$D/boot.bin" "$D/boot.o"
mkdir -p "$D/cd"
python3 - "$D" "$OUT" <<'PY'
import sys
d, out = sys.argv[1:3]
b = open(d + '/boot.bin', 'rb').read()
assert len(b) <= 446, "payload does not fit an MBR"
open(out + '/mbr.bin', 'wb').write(b.ljust(510, b'\0') + b'\x55\xaa'
    + b'DISK-LBA1: the sector after the MBR\r\n\0'.ljust(512, b'\0'))
open(d + '/cd/cdboot.bin', 'wb').write(b.ljust(2048, b'\0')
    + b"CD-NEXT-SECTOR: the boot file's second 2 KiB\r\n\0".ljust(2048, b'\0'))
open(d + '/cd/readme.txt', 'w').write('SeaBIOS El Torito test\n')
PY
xorriso -as mkisofs -quiet -V SEABIOS_CD -b cdboot.bin -no-emul-boot -boot-load-size 4 \
  -boot-info-table -o "$OUT/cd.iso" "$D/cd" 2>/dev/null
cp /usr/share/seabios/bios.bin "$OUT/bios.bin"

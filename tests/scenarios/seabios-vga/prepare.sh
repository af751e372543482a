# The text-mode payload (vgapay.S, GNU as, 16-bit) as an El Torito no-emulation boot CD.
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
as --32 -o "$D/p.o" vgapay.S
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o "$D/p.bin" "$D/p.o"
mkdir -p "$D/cd"
python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(b.ljust(2048, b"\0"))' "$D/p.bin" "$D/cd/boot.bin"
xorriso -as mkisofs -quiet -V VGAPAY -b boot.bin -no-emul-boot -boot-load-size 4 -o "$OUT/vgapay.iso" "$D/cd" 2>/dev/null

# Test kernels for -kernel's non-Linux formats, assembled here from multiboot.S / pvh32.S
# (+ common.S) with the build host's gcc (as the preprocessor and assembler) and ld:
#   mb-aout.elf  multiboot v1 with the a.out kludge address fields (flag 16)
#   mb-elf.elf   multiboot v1 without them: loaded by its ELF32 program headers
#   pvh32.elf    ELF32 (EM_386) whose entry is the Xen PHYS32_ENTRY note (PVH boot ABI)
#   mb-low.elf   mb-aout linked at 0x8000, inside the first MiB: ours refuses it
#   mod1.txt, mod2.txt  multiboot modules / the PVH initrd
set -eu
D=$(mktemp -d); trap 'rm -rf "$D"' EXIT
gcc -m32 -c -DAOUT -o "$D/mb-aout.o" multiboot.S
gcc -m32 -c -o "$D/mb-elf.o" multiboot.S
gcc -m32 -c -o "$D/pvh32.o" pvh32.S
for k in mb-aout mb-elf pvh32; do
  ld -m elf_i386 -n --no-warn-rwx-segments -T link.ld -o "$OUT/$k.elf" "$D/$k.o"
done
sed 's/0x100000/0x8000/' link.ld > "$D/low.ld"
ld -m elf_i386 -n --no-warn-rwx-segments -T "$D/low.ld" -o "$OUT/mb-low.elf" "$D/mb-aout.o"
printf 'MODULE-ONE-CONTENT\n' > "$OUT/mod1.txt"
printf 'second\001module\n' > "$OUT/mod2.txt"

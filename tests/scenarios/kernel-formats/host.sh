# -kernel with the formats QEMU boots besides Linux, on $DM, then the same on the other device
# model for comparison (QEMU's loader is the reference for what the guest should receive):
#   multiboot v1 (a.out kludge fields, and plain ELF32), with two -initrd modules QEMU's way;
#   a 32-bit PVH ELF kernel with one initrd.
# The test kernels print the boot information they received on COM1 and exit through
# isa-debug-exit (multiboot: status 33, PVH: 35). Then -serial file: truncation and the
# -chardev file,append=on way to append, and ours refusing an image that loads below 1 MiB.
BASE="-accel kvm -m 128M -nodefaults -display none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4"
MODS="$PWD/mod1.txt mod-arg=abc,$PWD/mod2.txt"
other=qemu; [ "$DM" = qemu ] && other=ours

# kboot KIND LABEL KERNEL ARGS...: boot KERNEL on device model KIND, output to /tmp/LABEL.KIND.
kboot() {
  kind=$1 label=$2 k=$3; shift 3
  run_dm "$kind" $BASE -serial stdio -kernel "$PWD/$k" "$@" > /tmp/$label.$kind 2>&1
}
boot_all() {
  kboot $1 aout mb-aout.elf -initrd "$MODS" -append "mb-arg=1 two"
  kboot $1 elf mb-elf.elf -initrd "$MODS" -append "mb-arg=1 two"
  kboot $1 pvh pvh32.elf -initrd "$PWD/mod1.txt" -append "pvh-arg=1 two"
}

# mem_upper must be the RAM from 1 MiB up to the first hole in the memory map the kernel got
# (the e820 differs between machines: QEMU's SeaBIOS reserves the top 128 KiB).
check_upper() {
  up=$(sed -n 's/.*mem_upper=\([0-9A-F]*\).*/\1/p' "$1" | head -1)
  [ -n "$up" ] || { echo "no mem_upper"; return; }
  top=$((0x100000)); changed=1
  while [ $changed = 1 ]; do
    changed=0
    for e in $(sed -n 's/.*MB mmap size=[0-9A-F]* base=\([0-9A-F]*\) len=\([0-9A-F]*\) type=00000001.*/\1:\2/p' "$1"); do
      b=$((0x${e%:*})); l=$((0x${e#*:}))
      if [ $b -le $top ] && [ $top -lt $((b + l)) ]; then top=$((b + l)); changed=1; fi
    done
  done
  want=$(( (top - 0x100000) / 1024 ))
  if [ "$want" = $((0x$up)) ]; then echo "mem_upper matches the mmap"; else echo "mem_upper 0x$up but the mmap says $want KiB"; fi
}

# The lines both device models must agree on: everything but what depends on the machine's
# memory map (mem_upper, the mmap beyond its first entry), the loader's name and the RSDP address.
comparable() {
  grep -E '^(MB|PVH) ' "$1" | tr -d '\r' \
    | grep -vE 'MB mmap|MB loader|PVH rsdp|PVH memmap_entries' | sed 's/ mem_upper=.*//'
  grep -m1 'MB mmap size' "$1" | tr -d '\r'
}

boot_all "$DM"
for l in aout elf pvh; do sed "s/^/$l| /" /tmp/$l.$DM; done
for l in aout elf; do echo "$l: $(check_upper /tmp/$l.$DM)"; done

boot_all $other
for l in aout elf pvh; do
  comparable /tmp/$l.$DM > /tmp/$l.a; comparable /tmp/$l.$other > /tmp/$l.b
  if [ -s /tmp/$l.a ] && cmp -s /tmp/$l.a /tmp/$l.b; then
    echo "$l: same on $DM and $other ($(wc -l < /tmp/$l.a) lines)"
  else
    echo "$l: differs between $DM and $other:"; diff /tmp/$l.b /tmp/$l.a | sed "s/^/$l diff (-$other +$DM): /"
  fi
  grep 'MB loader' /tmp/$l.$other | sed "s/^/$l $other| /"
done
[ "$DM" = ours ] || check_upper /tmp/aout.ours | sed 's/^/aout ours: /'

# -serial file: truncates what the file held; a file chardev with append=on keeps it.
printf 'STALE-%s\n' LINE > /tmp/trunc.log
dm $BASE -serial file:/tmp/trunc.log -kernel "$PWD/mb-aout.elf" > /tmp/trunc.out 2>&1
sed 's/^/trunc| /' /tmp/trunc.log; sed 's/^/trunc dm| /' /tmp/trunc.out
printf 'KEPT-%s\n' LINE > /tmp/append.log
dm $BASE -chardev file,id=log,path=/tmp/append.log,append=on -serial chardev:log -kernel "$PWD/mb-aout.elf" \
  > /tmp/append.out 2>&1
sed 's/^/append| /' /tmp/append.log; sed 's/^/append dm| /' /tmp/append.out

# Ours refuses a multiboot image that would overwrite the first MiB (QEMU loads it there).
ours $BASE -serial stdio -kernel "$PWD/mb-low.elf" 2>&1 | sed 's/^/low| /'
true

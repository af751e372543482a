# SeaBIOS (-bios) on our machine, with no fw_cfg device, boots a 16-bit payload from the CD-ROM
# (El Torito, no emulation) or from the ATA disk (MBR), as -boot order selects; both drives
# are attached each time. The payload prints on COM1, reads one more block through INT 13h and
# exits through isa-debug-exit with value 0x31: status (0x31 << 1) | 1 = 99.
# -d trace also logs the port and MMIO cycles nothing claims; a per-address summary of those is
# printed for information (SeaBIOS's debug port 0x402, fw_cfg 0x510/0x511, HPET, DMA, ...).
truncate -s 1M /tmp/hd.img
dd if=mbr.bin of=/tmp/hd.img conv=notrunc 2>/dev/null
sb() {
  label=$1; shift
  BG_QUIET=1 bg dm -accel kvm -m 64M -nodefaults -display none -serial stdio -no-reboot \
    -bios $PWD/bios.bin -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -drive file=/tmp/hd.img,if=ide,index=0,media=disk,format=raw \
    -drive file=$PWD/cd.iso,if=ide,index=2,media=cdrom,format=raw "$@"
  bg_wait 30; rc=$?
  grep -v 'TRACE' $BG_OUT | head -40 | sed "s/^/$label| /"
  echo "$label: unclaimed cycles (count, access):"
  grep 'unclaimed' $BG_OUT | sed 's/^.*unclaimed //' | sort | uniq -c | sort -rn | head -12 | sed "s/^/$label unclaimed| /"
  echo "$label: rc=$rc"
}
# (-d trace is our log item; QEMU spells tracing differently)
TRACE=; [ "$DM" = ours ] && TRACE="-d trace"
sb cd -boot order=d $TRACE
sb disk -boot order=c

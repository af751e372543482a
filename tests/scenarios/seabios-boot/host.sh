# SeaBIOS (-bios) on our machine boots a 16-bit payload from the CD-ROM (El Torito,
# no emulation) and from an ATA disk (MBR). The payload prints on COM1, reads one more block
# through INT 13h and exits through isa-debug-exit with value 0x31: status (0x31 << 1) | 1 = 99.
# -d unimp logs the I/O ports nobody emulates (SeaBIOS's debug port 0x402, fw_cfg 0x510...);
# they are summarized below rather than shown one by one.
truncate -s 1M /tmp/hd.img
dd if=mbr.bin of=/tmp/hd.img conv=notrunc 2>/dev/null
sb() {
  label=$1; shift
  BG_QUIET=1 bg dm -accel kvm -m 64M -nodefaults -display none -serial stdio -no-reboot \
    -bios $PWD/bios.bin -device isa-debug-exit,iobase=0xf4,iosize=4 -d unimp "$@"
  bg_wait 30; rc=$?
  grep -v 'unimp\|unhandled\|unimplemented' $BG_OUT | head -40 | sed "s/^/$label| /"
  grep -i 'unimp\|unhandled\|unimplemented' $BG_OUT | sed 's/^\[[^]]*\] *//; s/0x[0-9a-f]\{3,\}=0x[0-9a-f]*/&/' \
    | sed 's/value=[^ ]*//; s/data=[^ ]*//' | sort | uniq -c | sort -rn | head -15 | sed "s/^/$label unimp| /"
  echo "$label: rc=$rc"
}
sb cd -drive file=$PWD/cd.iso,if=ide,index=2,media=cdrom,format=raw -boot order=d
sb disk -drive file=/tmp/hd.img,if=ide,index=0,media=disk,format=raw -boot order=c

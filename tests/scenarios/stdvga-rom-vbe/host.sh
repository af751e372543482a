# Two boots with the standard VGA (-device VGA):
# 1. SeaBIOS (-bios, no fw_cfg) finds SeaVGABIOS in the VGA's ROM BAR, runs it, prints its
#    banner in text mode, and boots the payload from the CD; the payload reports on COM1 what
#    the text screen holds and what VBE function 4F00h answers.
# 2. Linux (direct kernel boot, no ROM: romfile=) binds bochs-drm to the card and gets /dev/fb0
#    in the EDID's preferred mode, with fbcon on it.
echo "part1: seabios + vgabios"
dm -accel kvm -m 64M -nodefaults -display none -serial stdio -no-reboot \
  -bios $PWD/bios.bin -device VGA,romfile=$PWD/vgabios-stdvga.bin \
  -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -drive file=$PWD/cd.iso,if=ide,index=2,media=cdrom,format=raw -boot order=d
rc1=$?
echo "part1: rc=$rc1"
echo "part2: linux bochs-drm"
boot -device VGA,romfile=
rc2=$?
echo "part2: rc=$rc2"
[ $rc1 = 99 ] && [ $rc2 = 0 ]

# The same guest through other boot paths and machine sizes a user would pick.
# 1. bzImage through the 64-bit boot protocol (XZ decompression in the guest: slow under TCG).
KERNEL=$PWD/bzImage APPEND_EXTRA="variant=bzimage" boot; echo "bzimage rc=$?"
# 2. Four vCPUs, and RAM above 4 GiB (the PCI hole at 3.5 GiB splits it).
SMP=4 MEM=512M APPEND_EXTRA="variant=smp" boot; echo "smp rc=$?"
MEM=4608M APPEND_EXTRA="variant=big" boot; echo "big rc=$?"
# 3. COM1 on a pty: the device model names it as QEMU does; the guest's console is COM2 (stdio).
/bin/devicemodel -accel kvm -m 256M -nodefaults -display none -serial pty -serial stdio -no-reboot \
  -kernel /l3/vmlinux -initrd $PWD/initrd.cpio -append "console=ttyS1 quiet pci=noearly panic=-1 variant=pty" 2>&1
echo "pty rc=$?"

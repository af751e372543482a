# The ISO is on the secondary master (-drive if=ide,index=2,media=cdrom): ata_piix + sr_mod.
for i in $(seq 50); do [ -b /dev/sr0 ] && break; sleep 0.2; done
[ -b /dev/sr0 ] || { echo "G-NO-SR0"; ls /sys/block; exit 1; }
cdctl status /dev/sr0
cdctl label /dev/sr0
echo "sr0-size=$(cat /sys/block/sr0/size)"
echo "xfer $(cat /sys/class/ata_device/dev*/xfer_mode 2>/dev/null | tr '\n' ' ')"
dmesg | grep -E 'ata[0-9].00: (ATAPI|configured)|sr0|scsi.*CD-ROM' | sed 's/^\[[ 0-9.]*\] /dmesg: /'
mkdir -p /mnt
mount -t iso9660 -o ro /dev/sr0 /mnt || { echo "G-MOUNT-FAILED"; exit 1; }
(cd /mnt && find . -type f | sort | xargs md5sum) | sed 's/^/sum /'
umount /mnt && echo G-UMOUNT-OK

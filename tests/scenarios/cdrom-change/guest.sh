# Sees three media in turn without rebooting: polls the volume label (O_DIRECT read of the
# ISO 9660 descriptor) until it changes, then mounts and reports id, data md5 and capacity.
for i in $(seq 50); do [ -b /dev/sr0 ] && break; sleep 0.2; done
[ -b /dev/sr0 ] || { echo "G-NO-SR0"; exit 1; }
mkdir -p /mnt
have() {
  mount -t iso9660 -o ro /dev/sr0 /mnt || { echo "G-MOUNT-FAILED"; return 1; }
  r="$(cat /mnt/id.txt) $(md5sum < /mnt/data.bin | cut -d' ' -f1) $(cat /sys/block/sr0/size)"
  # report after umount: a mounted CD is locked, and the host's next change would be refused
  umount /mnt && echo "G-HAVE $r"
}
label=$(cdctl label /dev/sr0) || exit 1
echo "$label"
if [ "$label" = "cd-label CDROM_C" ]; then
  # second boot, after the guest reset: the medium inserted over QMP is still there
  have && echo "G-AFTER-REBOOT $label"
  exit
fi
have || exit 1
for old in CDROM_A CDROM_B; do
  cdctl waitlabel /dev/sr0 $old 40 || { cdctl status /dev/sr0; exit 1; }
  have || exit 1
done
# a guest reset keeps the current medium (the machine resets, the drive is not re-created)
reboot -f

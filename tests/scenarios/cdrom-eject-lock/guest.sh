# Tray and lock from the guest's side. Each step prints a G- marker the host waits for; the
# host answers with QMP actions that the guest polls for (drive status via CDROM_DRIVE_STATUS).
for i in $(seq 50); do [ -b /dev/sr0 ] && break; sleep 0.2; done
[ -b /dev/sr0 ] || { echo "G-NO-SR0"; exit 1; }
cdctl status /dev/sr0
grep -E 'lock|eject' /proc/sys/dev/cdrom/info | tr -s '\t' ' ' | sed 's/^/cdinfo: /'
# 1. guest-initiated eject (START STOP UNIT, LoEj): the tray opens, the medium stays in it
cdctl eject /dev/sr0 && echo "G-EJECTED rc=0" || echo "G-EJECTED rc=$?"
cdctl status /dev/sr0
# 2. the host closes the tray (blockdev-close-tray)
cdctl wait /dev/sr0 DISC_OK 30 && echo G-CLOSED-BY-HOST || exit 1
# 3. mounting locks the door (PREVENT ALLOW MEDIUM REMOVAL)
mkdir -p /mnt
mount -t iso9660 -o ro /dev/sr0 /mnt && echo "G-MOUNTED $(cat /mnt/id.txt)" || echo G-MOUNT-FAILED
# 4. the host's plain eject is refused; its forced eject opens the tray anyway
cdctl wait /dev/sr0 TRAY_OPEN 30 && echo G-SAW-FORCED-EJECT || exit 1
umount /mnt && echo G-UMOUNTED
# 5. reading an empty drive fails promptly (Linux closes the tray first: autoclose)
timeout 20 dd if=/dev/sr0 of=/dev/null bs=2048 count=1 2> /tmp/dd.err; rc=$?
echo "G-EMPTY-READ rc=$rc $(head -1 /tmp/dd.err)"
cdctl status /dev/sr0
cdctl label /dev/sr0 2>&1 | head -1 | sed 's/^/G-EMPTY-LABEL /'
# let the host look once more before powering off
cdctl wait /dev/sr0 TRAY_OPEN 30 && echo G-DONE

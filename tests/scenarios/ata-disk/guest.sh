# Phase 1 (phase=1 on the kernel command line): make an ext2 filesystem on the ATA disk, write
# files, print their md5sums, write a raw marker block at 28 MiB, sync, power off.
# Phase 2: mount read-only, print the md5sums again, read the marker back; then show that
# sequential reads use bus-master DMA (transfer mode; few IRQ 14 interrupts per MiB).
for i in $(seq 50); do [ -b /dev/sda ] && break; sleep 0.2; done
[ -b /dev/sda ] || { echo "G-NO-SDA"; ls /sys/block; exit 1; }
phase=$(sed -n 's/.*phase=\([0-9]\).*/\1/p' /proc/cmdline)
echo "G-PHASE $phase sda-size=$(cat /sys/block/sda/size) ro=$(cat /sys/block/sda/ro)"
dmesg | grep -E 'ata1(\.00)?: ' | sed 's/^\[[ 0-9.]*\] /dmesg: /'
echo "xfer_mode=$(cat /sys/class/ata_device/dev1.0/xfer_mode)"
mkdir -p /mnt
MARK=57344   # 28 MiB in 512-byte sectors, outside the 24 MiB filesystem
if [ "$phase" = 1 ]; then
  mke2fs -F -L ATADISK /dev/sda 24576 > /tmp/mkfs.out 2>&1; echo "G-MKFS rc=$?"
  mount -t ext2 /dev/sda /mnt || { echo G-MOUNT-FAILED; exit 1; }
  mkdir -p /mnt/dir/sub
  dd if=/dev/urandom of=/mnt/random4m bs=64k count=64 2>/dev/null
  dd if=/dev/urandom of=/mnt/dir/sub/odd bs=1000 count=77 2>/dev/null
  echo "written in phase 1" > /mnt/dir/hello
  (cd /mnt && find . -type f | sort | xargs md5sum) | sed 's/^/sum1 /'
  umount /mnt && echo G-UMOUNT-OK
  { printf 'ATA-RAW-MARKER-28MiB'; head -c 492 /dev/zero; } > /tmp/blk
  dd if=/tmp/blk of=/dev/sda bs=512 seek=$MARK oflag=direct conv=notrunc 2>/dev/null && echo G-MARKER-WRITTEN
  sync
else
  mount -t ext2 -o ro /dev/sda /mnt || { echo G-MOUNT-FAILED; exit 1; }
  (cd /mnt && find . -type f | sort | xargs md5sum) | sed 's/^/sum2 /'
  umount /mnt
  echo "G-MARKER $(dd if=/dev/sda bs=512 skip=$MARK count=1 iflag=direct 2>/dev/null | head -c 20)"
  irq() { awk '$1 == "14:" { print $2 }' /proc/interrupts; }
  a=$(irq)
  dd if=/dev/sda of=/dev/null bs=1M count=16 iflag=direct 2>/dev/null
  b=$(irq)
  # PIO interrupts once per sector (or per 16-sector block): >= 2048 for 16 MiB; DMA once per request
  d=$((b - a)); [ $d -gt 0 ] && [ $d -lt 1000 ] && v=DMA-LIKE || v=NOT-DMA-LIKE
  echo "G-IRQ14 16MiB-read interrupts=$d $v"
fi

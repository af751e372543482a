# Two boots over one raw image (made here in L2's tmpfs: a sparse file would be stored whole in
# the uncompressed overlay). Between them L2 checks the image itself: e2fsck and a raw marker.
IMG=/tmp/disk.raw
truncate -s 32M $IMG
APPEND_EXTRA=phase=1; bg boot -drive file=$IMG,if=ide,index=0,media=disk,format=raw,cache=writeback
bg_wait 60; echo "boot1: rc=$?"; OUT1=$BG_OUT
/sbin/e2fsck -fn $IMG 2>&1 | sed 's/^/e2fsck: /'
echo "E2FSCK rc=$(/sbin/e2fsck -fn $IMG > /dev/null 2>&1; echo $?)"
echo "RAW-AT-28MiB: $(dd if=$IMG bs=512 skip=57344 count=1 2>/dev/null | head -c 20)"
# the same disk the libxl way: if=none drive + -device ide-hd
APPEND_EXTRA=phase=2; bg boot -drive if=none,id=disk0,file=$IMG,format=raw,cache=writeback \
  -device ide-hd,drive=disk0,bus=ide.0,unit=0
bg_wait 60; echo "boot2: rc=$?"
tr -d '\r' < $OUT1 | sed -n 's/^sum1 //p' > /tmp/s1
tr -d '\r' < $BG_OUT | sed -n 's/^sum2 //p' > /tmp/s2
if [ -s /tmp/s1 ] && cmp -s /tmp/s1 /tmp/s2; then echo "DISK-SUMS-MATCH ($(wc -l < /tmp/s1) files)"
else echo "DISK-SUMS-MISMATCH"; diff /tmp/s1 /tmp/s2; fi

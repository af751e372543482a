# Boots with the ISO on the secondary master; the guest mounts it and prints md5sums of every
# file; they must equal those computed on the build host when the ISO was made.
bg boot -drive file=$PWD/test.iso,if=ide,index=2,media=cdrom,format=raw
bg_wait 60; rc=$?
grep '^sum ' $BG_OUT | tr -d '\r' | sed 's/^sum //' > /tmp/guest.sums
if [ -s /tmp/guest.sums ] && cmp -s sums /tmp/guest.sums; then
  echo "CD-SUMS-MATCH ($(wc -l < sums) files)"
else
  echo "CD-SUMS-MISMATCH"; echo "expected:"; cat sums; echo "guest:"; cat /tmp/guest.sums
fi
want=$(cat sectors); got=$(grep -o 'sr0-size=[0-9]*' $BG_OUT | cut -d= -f2)
[ "$want" = "$got" ] && echo "CD-SIZE-MATCH $got sectors" || echo "CD-SIZE-MISMATCH iso=$want guest=$got"
exit $rc

# The i440FX/PIIX3 chipset as the guest kernel enumerated it, and raw config space through
# the kernel's config accessors (conf1 at 0xcf8/0xcfc on this machine).
for d in /sys/bus/pci/devices/*; do
  echo "pci ${d##*/} $(cat $d/vendor) $(cat $d/device) $(cat $d/class)"
done
for f in 0000:00:00.0 0000:00:01.0 0000:00:01.3; do
  c=/sys/bus/pci/devices/$f/config
  [ -r $c ] || { echo "cfg $f missing"; continue; }
  set -- $(od -An -tx1 -N16 $c)
  echo "cfg $f vendor=$2$1 device=$4$3 class=${12}${11}${10} header=${15}"
  # Interrupt Line (0x3c) is a read/write scratch register on every function (PCI 3.0 6.2.4)
  old=$(od -An -tx1 -j60 -N1 $c | tr -d ' ')
  printf '\132' | dd of=$c bs=1 seek=60 conv=notrunc 2>/dev/null
  new=$(od -An -tx1 -j60 -N1 $c | tr -d ' ')
  printf "\\$(printf %o 0x$old)" | dd of=$c bs=1 seek=60 conv=notrunc 2>/dev/null
  back=$(od -An -tx1 -j60 -N1 $c | tr -d ' ')
  echo "cfgwrite $f intline=$new restored=$([ "$back" = "$old" ] && echo yes || echo "no($old->$back)")"
done

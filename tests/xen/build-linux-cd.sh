#!/bin/bash
# The Xen suite's Linux HVM guest CD: build-linux-cd.sh OUT.iso
# El Torito (no emulation) ISO: ISOLINUX (Debian's, from tests/xen/setup.sh's cache) boots Debian's kernel (the
# bzImage tests/scripts/setup.sh downloads) with an xz initramfs: busybox (static, from the host),
# uio + uio_pci_generic (resolved as build-images.sh resolves L3 modules), tests/guest-tools/uiotest.c built
# static, and guest/linux-init as /init. Made at build time, never committed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$ROOT/tests/xen
ISO=${1:?usage: build-linux-cd.sh OUT.iso}
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
. "$CACHE/setup.env"
. "$CACHE/xen/setup-xen.env"
log() { echo "xen-build: linux cd: $*" >&2; }
[ -n "${XEN_ISOLINUX:-}" ] && [ -f "$XEN_ISOLINUX/usr/lib/ISOLINUX/isolinux.bin" ] \
  || { log "ISOLINUX missing (run tests/xen/setup.sh)"; exit 1; }
[ -f "$VMLINUZ" ] || { log "kernel $VMLINUZ missing (run tests/scripts/setup.sh)"; exit 1; }
W=$(dirname "$ISO")/linux-cd
rm -rf "$W" && mkdir -p "$W/cd/isolinux" "$W/initrd"/{bin,proc,sys,dev,tmp,mods}

# initramfs
R=$W/initrd
cp /bin/busybox "$R/bin/busybox"
file -b "$R/bin/busybox" | grep -q 'static' || { log "/bin/busybox is not static (host package busybox-static)"; exit 1; }
for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
cc="gcc -static"; command -v musl-gcc >/dev/null && cc="musl-gcc -static"
$cc -Os -Wall -o "$R/bin/uiotest" "$ROOT/tests/guest-tools/uiotest.c" || { log "building uiotest failed"; exit 1; }
strip "$R/bin/uiotest"
python3 "$ROOT/tests/scripts/resolve-modules.py" "$KMOD" uio_pci_generic virtio_pci virtio_rng \
  | while read -r m; do cp "$m" "$R/mods/"; basename "$m" .ko; done > "$R/mods/order"
# Display guests (xen-*-vga-linux): DRM bochs/cirrus, loaded by linux-init only when a VGA card is present, and
# fbpat (tests/guest-tools/fbpat.c) for the framebuffer pattern.
$cc -Os -Wall -o "$R/bin/fbpat" "$ROOT/tests/guest-tools/fbpat.c" || { log "building fbpat failed"; exit 1; }
strip "$R/bin/fbpat"
mkdir -p "$R/mods/display"
python3 "$ROOT/tests/scripts/resolve-modules.py" "$KMOD" bochs cirrus \
  | while read -r m; do cp "$m" "$R/mods/display/"; basename "$m" .ko; done > "$R/mods/display/order"
cp "$X/guest/linux-init" "$R/init"; chmod +x "$R/init"
# xz (the kernel's decoder wants crc32 and allocates the whole dictionary: 4 MiB, more than the archive): SeaBIOS reads the CD by PIO, several ioreqs per 2 KB sector, which costs
# far more under nested TCG than unpacking in the guest.
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | xz --check=crc32 --lzma2=preset=9,dict=4MiB > "$W/cd/initrd"

# CD: ISOLINUX reads isolinux.cfg next to isolinux.bin; no SERIAL line, so it prints nothing on COM1.
cp "$VMLINUZ" "$W/cd/vmlinuz"
cp "$XEN_ISOLINUX/usr/lib/ISOLINUX/isolinux.bin" "$XEN_ISOLINUX/usr/lib/syslinux/modules/bios/ldlinux.c32" "$W/cd/isolinux/"
cat > "$W/cd/isolinux/isolinux.cfg" <<CFG
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd
  APPEND console=ttyS0 quiet panic=-1
CFG
xorriso -as mkisofs -quiet -V XENLINUX -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot \
  -boot-load-size 4 -boot-info-table -o "$ISO.tmp" "$W/cd" 2>/dev/null
mv "$ISO.tmp" "$ISO"
log "$(basename "$ISO"): $(du -h "$ISO" | cut -f1) (kernel $KVER, initrd $(du -h "$W/cd/initrd" | cut -f1))"

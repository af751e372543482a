#!/bin/bash
# Xen mode of the test harness, step 1: Debian's Xen 4.17 and qemu-xen, downloaded once and extracted
# (apt-get download + dpkg-deb -x; nothing is installed on the host). Idempotent; ~0 s when cached.
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests/xen/<hypervisor-version>/
#   debs/                the downloaded .deb files (kept: ~10 MB)
#   root/                all of them extracted (xl, xenstored, libs, hvmloader, qemu-system-xen, SeaBIOS, ...)
#   xen.elf              the hypervisor, gunzipped: an ELF32 multiboot image that `qemu -kernel` boots
#   .complete            written last
#   isolinux-<version>/  ISOLINUX (isolinux + syslinux-common extracted): the Linux guest CD's boot loader
# Writes $CACHE/xen/setup-xen.env (XEN_DIR XEN_ROOT XEN_ELF XEN_VERSION XEN_ISOLINUX) and prints it.
# Also needs tests/scripts/setup.sh (the Debian kernel; this script runs it when setup.env is missing).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
XC=$CACHE/xen
mkdir -p "$XC"
log() { echo "xen-setup: $*" >&2; }

[ -f "$CACHE/setup.env" ] || "$HERE/../scripts/setup.sh" >/dev/null

# Runtime packages: the hypervisor, the toolstack (xl, xenstored, xenconsoled, xen-init-dom0, libxl-save-helper,
# hvmloader), the Xen libraries, Debian's qemu-xen device model and the non-Xen libraries it and xl link
# against that a minimal host may lack (the rest of the ldd closure is taken from the host, also bookworm),
# and SeaBIOS (libxl hands /usr/share/seabios/bios-256k.bin to hvmloader as a module).
PKGS="xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils qemu-system-xen seabios
 libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenmisc4.17 libxenstore4 libxentoollog1
 libxendevicemodel1 libxentoolcore1 libxenhypfs1 libyajl2 libspice-server1 libusb-1.0-0 libfdt1 libjpeg62-turbo
 libpixman-1-0"

VER=$(apt-cache policy xen-hypervisor-4.17-amd64 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -1 || true)
if [ -z "$VER" ] || [ "$VER" = "(none)" ]; then
  D=$(ls -dt "$XC"/*/ 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && echo "${d%/}" && break; done || true)
  [ -n "$D" ] || { log "cannot resolve xen-hypervisor-4.17-amd64 (apt-cache policy) and nothing cached in $XC"; exit 1; }
  log "apt metadata unavailable; using cached $D"
else
  D=$XC/${VER//[:+~]/_}
fi

if [ ! -f "$D/.complete" ]; then
  log "downloading Xen $VER and qemu-xen into $D"
  rm -rf "$D.tmp" && mkdir -p "$D.tmp/debs" && cd "$D.tmp/debs"
  # shellcheck disable=SC2086
  if ! apt-get download $PKGS >&2; then
    log "apt-get download failed; running apt-get update and retrying"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    apt-get download $PKGS >&2
  fi
  cd "$D.tmp"
  for deb in debs/*.deb; do dpkg-deb -x "$deb" root; done
  rm -rf root/usr/share/doc root/usr/share/man
  gz=$(ls root/boot/xen-4.17-amd64.gz)
  gunzip -c "$gz" > xen.elf
  file -b xen.elf | grep -q 'ELF 32-bit' || { log "$gz did not unpack to an ELF32 multiboot image: $(file -b xen.elf)"; exit 1; }
  for f in root/usr/lib/xen-4.17/bin/xl root/usr/lib/xen-4.17/boot/hvmloader root/usr/share/seabios/bios-256k.bin; do
    [ -e "$f" ] || { log "expected $f in the extracted packages"; exit 1; }
  done
  touch .complete
  cd / && rm -rf "$D" && mv "$D.tmp" "$D"
fi

# The Linux HVM guest's boot loader: ISOLINUX (El Torito, no emulation) from Debian's isolinux + syslinux-common,
# in its own cache directory (tests/xen/build-linux-cd.sh reads isolinux.bin and ldlinux.c32 from it).
LOADER_PKGS="isolinux syslinux-common"
LVER=$(apt-cache policy isolinux 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -1 || true)
if [ -z "$LVER" ] || [ "$LVER" = "(none)" ]; then
  L=$(ls -dt "$XC"/isolinux-*/ 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && echo "${d%/}" && break; done || true)
  [ -n "$L" ] || { log "cannot resolve isolinux (apt-cache policy) and nothing cached in $XC"; exit 1; }
else
  L=$XC/isolinux-${LVER//[:+~]/_}
fi
if [ ! -f "$L/.complete" ]; then
  log "downloading ISOLINUX $LVER into $L"
  rm -rf "$L.tmp" && mkdir -p "$L.tmp/debs" && cd "$L.tmp/debs"
  # shellcheck disable=SC2086
  apt-get download $LOADER_PKGS >&2
  cd "$L.tmp"
  for deb in debs/*.deb; do dpkg-deb -x "$deb" root; done
  for f in root/usr/lib/ISOLINUX/isolinux.bin root/usr/lib/syslinux/modules/bios/ldlinux.c32; do
    [ -e "$f" ] || { log "expected $f in the extracted packages"; exit 1; }
  done
  touch .complete
  cd / && rm -rf "$L" && mv "$L.tmp" "$L"
fi

cat > "$XC/setup-xen.env" <<ENV
XEN_DIR=$D
XEN_ROOT=$D/root
XEN_ELF=$D/xen.elf
XEN_VERSION=$(basename "$D")
XEN_ISOLINUX=$L/root
ENV
cat "$XC/setup-xen.env"

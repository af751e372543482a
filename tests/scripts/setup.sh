#!/bin/bash
# Host prerequisites for the nested integration tests. Idempotent and fast when cached.
#  - installs missing host packages (apt-get update only when something must be installed)
#  - downloads Debian's kernel package once into the cache and derives:
#      vmlinuz  (L2 kernel, bzImage)   vmlinux (L3 kernel, uncompressed ELF with PVH entry)
#      root/lib/modules/<kver>/        (kvm modules for L2, optional modules for L3)
#  - writes $CACHE/setup.env (KERNEL_DIR KVER VMLINUZ VMLINUX KMOD) and prints it
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests/kernel/<package>_<version>/
set -euo pipefail
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
mkdir -p "$CACHE"
log() { echo "setup: $*" >&2; }

# ---------- host packages ----------
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-system-x86_64 || need+=(qemu-system-x86)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
[ -f /usr/share/seabios/bios-256k.bin ] || need+=(seabios)
# QEMU's keymaps for the VNC server's -k (devicemodel reads /usr/share/qemu/keymaps)
[ -f /usr/share/qemu/keymaps/en-us ] || need+=(qemu-system-data)
have cpio || need+=(cpio)
have xorriso || need+=(xorriso)
have python3 || need+=(python3)
have file || need+=(file)
have dpkg-deb || need+=(dpkg)
# gvnccapture: a real VNC client that writes a PNG without X (display scenarios' host steps)
have gvnccapture || need+=(gvncviewer)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# ---------- kernel ----------
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1 || true)
VER=
[ -n "$PKG" ] && VER=$(apt-cache policy "$PKG" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -1)
if [ -z "$PKG" ] || [ -z "$VER" ] || [ "$VER" = "(none)" ]; then
  # apt metadata unusable (e.g. no lists): reuse the newest complete cached kernel if any
  K=$(ls -dt "$CACHE"/kernel/*/ 2>/dev/null | while read -r d; do [ -f "$d/.complete" ] && echo "${d%/}" && break; done || true)
  [ -n "$K" ] || { log "cannot resolve linux-image-amd64 (apt-cache depends) and nothing cached in $CACHE/kernel"; exit 1; }
  log "apt metadata unavailable; using cached $K"
else
  K=$CACHE/kernel/${PKG}_${VER}
fi
if [ ! -f "$K/.complete" ]; then
  log "preparing kernel $PKG $VER in $K"
  rm -rf "$K.tmp" && mkdir -p "$K.tmp" && cd "$K.tmp"
  if ! apt-get download "$PKG=$VER" >&2; then
    log "apt-get download failed; running apt-get update and retrying"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    PKG=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)
    apt-get download "$PKG" >&2
  fi
  dpkg-deb -x ./*.deb root
  rm -f ./*.deb   # 70 MB; the extracted tree is what we use
  VMLINUZ=$(ls root/boot/vmlinuz-*)
  # The bzImage payload is XZ (CONFIG_KERNEL_XZ=y): decompress from the first XZ magic; trailing data is ignored.
  python3 - "$VMLINUZ" vmlinux <<'PY'
import sys, lzma
d = open(sys.argv[1], 'rb').read()
off = d.find(b'\xfd7zXZ\x00')
if off < 0: sys.exit("no XZ payload in " + sys.argv[1])
out = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[off:])
if out[:4] != b'\x7fELF': sys.exit("payload is not an ELF")
open(sys.argv[2], 'wb').write(out)
PY
  rm -rf root/usr/share/doc
  touch .complete
  cd / && rm -rf "$K" && mv "$K.tmp" "$K"
fi
# ---------- vncdotool (PyPI only): a scriptable VNC client (keys, pointer, capture) ----------
VNCDO_VENV=$CACHE/vncdotool-1.4.2
if [ ! -x "$VNCDO_VENV/bin/vncdo" ]; then
  log "installing vncdotool 1.4.2 into $VNCDO_VENV"
  rm -rf "$VNCDO_VENV"
  python3 -m venv "$VNCDO_VENV" >&2 && "$VNCDO_VENV/bin/pip" install -q vncdotool==1.4.2 >&2 \
    || { log "cannot install vncdotool (python3 -m venv + pip install vncdotool==1.4.2): the display scenarios need it"; exit 1; }
fi
have gvnccapture || { log "gvnccapture missing after installing gvncviewer"; exit 1; }

KVER=$(basename "$(ls -d "$K"/root/lib/modules/*/ | head -1)")
cat > "$CACHE/setup.env" <<ENV
KERNEL_DIR=$K
KVER=$KVER
VMLINUZ=$K/root/boot/vmlinuz-$KVER
VMLINUX=$K/vmlinux
KMOD=$K/root/lib/modules/$KVER
VNCDO=$VNCDO_VENV/bin/vncdo
GVNCCAPTURE=$(command -v gvnccapture)
ENV
cat "$CACHE/setup.env"

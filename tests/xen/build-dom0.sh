#!/bin/bash
# Xen mode of the test harness, step 2: everything the Xen L1 boots, into $XEN_OUT (default target/xen):
#   devicemodel     our device model, static (musl; else gnu + crt-static), built in target/nested-cargo
#   qmp             tests/src/bin/qmp.rs built static: a QMP client for dom0 (busybox has no unix-socket client)
#   cd1.iso cd2.iso the HVM guest's CD-ROMs: El Torito no-emulation boot of guest/cdboot.S (volume ids differ)
#   linux.iso       the Linux HVM guest's CD (build-linux-cd.sh: ISOLINUX, Debian's kernel, guest/linux-init)
#   dom0.cpio       uncompressed dom0 initramfs: busybox, the Xen kernel modules, the Xen 4.17 toolstack and its
#                   libraries, hvmloader, SeaBIOS, Debian's qemu-xen (/usr/libexec/xen-qemu-system-i386), ours
#                   (/usr/bin/devicemodel), the ISOs, dom0/init + dom0/lib.sh + scenarios/
# Needs tests/scripts/setup.sh and tests/xen/setup.sh to have run (reads their env files).
# Env: XEN_DM_BIN=PATH uses that devicemodel binary instead of building one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$ROOT/tests/xen
OUT=${XEN_OUT:-$ROOT/target/xen}
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
. "$CACHE/setup.env"
. "$CACHE/xen/setup-xen.env"
XR=$XEN_ROOT
XLIB=$XR/usr/lib/x86_64-linux-gnu
mkdir -p "$OUT"
log() { echo "xen-build: $*" >&2; }
SECONDS=0

# ---------- static binaries: our device model and the QMP client ----------
musl_ok() {
  [ -z "${NESTED_NO_MUSL:-}" ] && { rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl >&2; }
}
check_static() { file -b "$1" | grep -Eq 'static(ally|-pie)? linked|static-pie' || log "warning: $1 is not static: $(file -b "$1")"; }

if [ -n "${XEN_DM_BIN:-}" ]; then
  cp "$XEN_DM_BIN" "$OUT/devicemodel"
else
  # Same build as tests/scripts/build-images.sh (and the same target dir, so the two share artifacts):
  # own target dir because this may run from inside `cargo test`, which holds the lock on target/.
  (
    cd "$ROOT"
    export CARGO_TARGET_DIR=${NESTED_CARGO_TARGET:-$ROOT/target/nested-cargo}
    if musl_ok; then
      cargo build --release -p devicemodel --target x86_64-unknown-linux-musl >&2
      cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/devicemodel" "$OUT/devicemodel"
    else
      RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release -p devicemodel --target x86_64-unknown-linux-gnu >&2
      cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/devicemodel" "$OUT/devicemodel"
    fi
  ) || { log "building devicemodel failed"; exit 1; }
fi
check_static "$OUT/devicemodel"

QMP_SRC=$ROOT/tests/src/bin/qmp.rs
[ -f "$QMP_SRC" ] || { log "$QMP_SRC is missing (the QMP client dom0 needs)"; exit 1; }
if [ ! -x "$OUT/qmp" ] || [ "$QMP_SRC" -nt "$OUT/qmp" ]; then
  if musl_ok; then
    rustc --edition 2021 -O --target x86_64-unknown-linux-musl -o "$OUT/qmp" "$QMP_SRC" >&2
  else
    rustc --edition 2021 -O -C target-feature=+crt-static -o "$OUT/qmp" "$QMP_SRC" >&2
  fi
fi
check_static "$OUT/qmp"
# pngcmp (static, for dom0) and, on the host, pngcmp + host-steps (tests/src/host_steps.rs) for host steps
(cd "$ROOT" && export CARGO_TARGET_DIR=${NESTED_CARGO_TARGET:-$ROOT/target/nested-cargo} \
  && cargo build --release -p nested-tests --bin pngcmp --bin host-steps >&2 \
  && cp "$CARGO_TARGET_DIR/release/pngcmp" "$CARGO_TARGET_DIR/release/host-steps" "$OUT/" \
  && if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
       cargo build --release -p nested-tests --bin pngcmp --target x86_64-unknown-linux-musl >&2 \
         && cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/pngcmp" "$OUT/pngcmp-static"
     else
       RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p nested-tests --bin pngcmp --target x86_64-unknown-linux-gnu >&2 \
         && cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/pngcmp" "$OUT/pngcmp-static"
     fi) || { echo "build-dom0: building pngcmp/host-steps failed" >&2; exit 1; }

# ---------- guest CD-ROMs ----------
G=$OUT/guest
rm -rf "$G" && mkdir -p "$G/cd"
as --32 -o "$G/cdboot.o" "$X/guest/cdboot.S"
ld -m elf_i386 -Ttext=0x7c00 --oformat binary -o "$G/cd/cdboot.bin" "$G/cdboot.o"
[ "$(stat -c %s "$G/cd/cdboot.bin")" = 2048 ] || { log "cdboot.bin is not exactly one 2048-byte sector"; exit 1; }
for n in 1 2; do
  echo "test medium $n" > "$G/cd/MEDIUM.TXT"
  xorriso -as mkisofs -quiet -V "XENCD$n" -b cdboot.bin -no-emul-boot -boot-load-size 4 -o "$OUT/cd$n.iso" "$G/cd" 2>/dev/null
done

# The Linux HVM guest's CD (ISOLINUX + Debian's kernel + busybox initramfs with uio_pci_generic and uiotest)
"$X/build-linux-cd.sh" "$OUT/linux.iso"

# ---------- dom0 initramfs ----------
R=$OUT/dom0
rm -rf "$R"
mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,run,mods,etc/xen,var/lib/xen,var/log/xen,usr/bin,usr/sbin,usr/libexec} \
         "$R"/usr/lib/xen-4.17/{bin,boot} "$R/usr/share/seabios" "$R/usr/share/qemu" "$R/xen"
ln -s ../run "$R/var/run"
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
# xenfs needs xen-privcmd (depends= in the .ko); the others have no dependencies.
for m in xen/xen-privcmd xen/xenfs/xenfs xen/xen-evtchn xen/xen-gntdev xen/xen-gntalloc; do
  cp "$KMOD/kernel/drivers/$m.ko" "$R/mods/"
  basename "$m"
done > "$R/mods/order"
# e1000 (no dependencies): L1 user networking for scenarios with host steps (VNC clients on the host)
cp "$KMOD/kernel/drivers/net/ethernet/intel/e1000/e1000.ko" "$R/mods/" && echo e1000 >> "$R/mods/order"
# Display scenarios decode the VGA BIOS's text screen with its font (pngcmp text), in dom0 too.
cp /usr/share/seabios/vgabios-stdvga.bin /usr/share/seabios/vgabios-cirrus.bin "$R/usr/share/seabios/"
cp "$OUT/pngcmp-static" "$R/usr/bin/pngcmp"
# Toolstack: run from /usr/lib/xen-4.17/bin (the /usr/sbin entries are a wrapper script that wants /sys/hypervisor).
BINS="usr/lib/xen-4.17/bin/xl usr/lib/xen-4.17/bin/xenstored usr/lib/xen-4.17/bin/xenconsoled
 usr/lib/xen-4.17/bin/xen-init-dom0 usr/lib/xen-4.17/bin/libxl-save-helper usr/lib/xen-4.17/bin/xenconsole
 usr/bin/xenstore usr/libexec/xen-qemu-system-i386"
for b in $BINS; do cp -a "$XR/$b" "$R/$b"; done
for t in read write ls list rm exists watch chmod; do ln -sf xenstore "$R/usr/bin/xenstore-$t"; done
ln -sf ../lib/xen-4.17/bin/xl "$R/usr/sbin/xl"
cp "$XR/usr/lib/xen-4.17/boot/hvmloader" "$R/usr/lib/xen-4.17/boot/"
# libxl hands this file to hvmloader as the BIOS module (path compiled into libxenlight)
cp "$XR/usr/share/seabios/bios-256k.bin" "$R/usr/share/seabios/"
# the VGA BIOSes our stdvga/cirrus load into their ROM BAR (from the same extracted seabios package)
cp "$XR"/usr/share/seabios/vgabios-stdvga.bin "$XR"/usr/share/seabios/vgabios-cirrus.bin "$R/usr/share/seabios/"
cp "$XR/etc/xen/xl.conf" "$R/etc/xen/"
# qemu-xen loads a keymap even for `-vnc none` (libxl always passes -vnc); same QEMU 7.2 data as the host's
[ -d /usr/share/qemu/keymaps ] || { log "/usr/share/qemu/keymaps missing (host package qemu-system-data)"; exit 1; }
cp -r /usr/share/qemu/keymaps "$R/usr/share/qemu/"
# Shared libraries: Xen's from the extracted debs, everything else from this (bookworm) host.
missing=0
for b in $BINS; do
  while read -r line; do
    case $line in
      *"not found"*) log "$b: $line"; missing=1; continue;;
    esac
    l=$(echo "$line" | grep -o '/[^ ]*' | head -1) || continue
    [ -n "$l" ] || continue
    case $l in "$XR"/*) d=${l#"$XR"};; *) d=$l;; esac
    [ -e "$R$d" ] || { mkdir -p "$R$(dirname "$d")"; cp -L "$l" "$R$d"; }
  done < <(LD_LIBRARY_PATH=$XLIB ldd "$XR/$b")
done
[ $missing = 0 ] || { log "libraries missing for the dom0 tools (see above)"; exit 1; }
cp "$OUT/devicemodel" "$R/usr/bin/devicemodel"
cp "$OUT/qmp" "$R/usr/bin/qmp"
cp "$OUT/cd1.iso" "$OUT/cd2.iso" "$OUT/linux.iso" "$R/xen/"
cp "$X/dom0/init" "$R/init"; chmod +x "$R/init"
cp "$X/dom0/lib.sh" "$X/dom0/cdcheck.sh" "$R/xen/"
cp -r "$X/scenarios" "$R/xen/scenarios"
(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$OUT/dom0.cpio.tmp"
mv "$OUT/dom0.cpio.tmp" "$OUT/dom0.cpio"
log "dom0.cpio ready ($(du -sh "$OUT/dom0.cpio" | cut -f1), ${SECONDS}s)"

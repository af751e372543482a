#!/bin/bash
# Builds everything the nested suite boots, into $OUT (default target/nested):
#   $OUT/devicemodel          our static device model (musl; or gnu + crt-static)
#   $OUT/l2-base.cpio         L2 initramfs: busybox, kvm modules, devicemodel, L3 vmlinux, /init
#   $OUT/l2-qemu.cpio         overlay with the host qemu-system-x86_64, its libs and firmware
#                             (appended only when a run needs QEMU as device model)
#   $OUT/qmp                  QMP client for host.sh (tests/src/bin/qmp.rs), static, in L2 /bin
#   $OUT/guest-tools/<name>   tests/guest-tools/<name>.c, static; into L3 /bin per options guest_tools=
#   $OUT/scen/<name>/initrd.cpio   per-scenario L3 initramfs (busybox + /init + guest.sh + modules)
#   $OUT/scen/<name>/files/   what the scenario's prepare.sh left in $OUT (ISOs, images); the
#                             harness copies it to /scen/<name>/ in L2
# Usage: build-images.sh SCENARIO_DIR...     (needs setup.sh to have run; reads its setup.env)
# All archives are uncompressed newc cpio: unpacking a compressed initramfs under TCG is slow.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$ROOT/tests
OUT=${NESTED_OUT:-$ROOT/target/nested}
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
. "$CACHE/setup.env"
mkdir -p "$OUT"
log() { echo "build: $*" >&2; }
mkcpio() { (cd "$1" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$2.tmp" && mv "$2.tmp" "$2"; }
BUSYBOX=/bin/busybox

# ---------- our device model, static ----------
build_dm() {
  cd "$ROOT"
  # Own target dir: this may run from inside `cargo test`, which holds the lock on target/.
  export CARGO_TARGET_DIR=${NESTED_CARGO_TARGET:-$ROOT/target/nested-cargo}
  local bin
  if [ -z "${NESTED_NO_MUSL:-}" ] && { rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl \
       || rustup target add x86_64-unknown-linux-musl >&2; }; then
    cargo build --release -p devicemodel --target x86_64-unknown-linux-musl >&2 || return 1
    bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/devicemodel
  else
    log "musl target unavailable; building gnu with crt-static"
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --release -p devicemodel --target x86_64-unknown-linux-gnu >&2 || return 1
    bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/devicemodel
  fi
  if ! file -b "$bin" | grep -Eq 'static(ally|-pie)? linked|static-pie'; then
    log "warning: $bin is not statically linked: $(file -b "$bin")"
  fi
  # Replace by rename: someone may be running the previous binary (cp over it: text file busy).
  cp "$bin" "$OUT/devicemodel.new" && mv -f "$OUT/devicemodel.new" "$OUT/devicemodel"
}

# ---------- the QMP client for L2 (same target and fallback as the device model) ----------
build_qmp() {
  cd "$ROOT"
  export CARGO_TARGET_DIR=${NESTED_CARGO_TARGET:-$ROOT/target/nested-cargo}
  local bin
  if [ -z "${NESTED_NO_MUSL:-}" ] && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    cargo build --release -p nested-tests --bin qmp --target x86_64-unknown-linux-musl >&2 || return 1
    bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/qmp
  else
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --release -p nested-tests --bin qmp --target x86_64-unknown-linux-gnu >&2 || return 1
    bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/qmp
  fi
  cp "$bin" "$OUT/qmp"
}

# ---------- pngcmp (tests/src/bin/pngcmp.rs): on the host for host steps, static in L2 /bin; ----------
# ---------- vncbench (tests/src/bin/vncbench.rs, the display benchmark's client) static in L2 /bin ----------
build_pngcmp() {
  cd "$ROOT"
  export CARGO_TARGET_DIR=${NESTED_CARGO_TARGET:-$ROOT/target/nested-cargo}
  cargo build --release -p nested-tests --bin pngcmp >&2 || return 1
  cp "$CARGO_TARGET_DIR/release/pngcmp" "$OUT/pngcmp.new" && mv -f "$OUT/pngcmp.new" "$OUT/pngcmp"
  if [ -z "${NESTED_NO_MUSL:-}" ] && rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    cargo build --release -p nested-tests --bin pngcmp --bin vncbench --target x86_64-unknown-linux-musl >&2 || return 1
    cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/pngcmp" "$OUT/pngcmp-static"
    cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/vncbench" "$OUT/vncbench"
  else
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --release -p nested-tests --bin pngcmp --bin vncbench --target x86_64-unknown-linux-gnu >&2 || return 1
    cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/pngcmp" "$OUT/pngcmp-static"
    cp "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/vncbench" "$OUT/vncbench"
  fi
}

# ---------- guest tools: tests/guest-tools/*.c, static (musl-gcc when present: ~50 KB each) ----------
build_guest_tools() {
  local G=$OUT/guest-tools c n cc="gcc -static"
  command -v musl-gcc >/dev/null && cc="musl-gcc -static"
  rm -rf "$G" && mkdir -p "$G"
  for c in "$T"/guest-tools/*.c; do
    n=$(basename "$c" .c)
    $cc -Os -Wall -o "$G/$n" "$c" || { log "guest tool $n failed to build"; return 1; }
  done
}

# Kernel modules NAME... -> module paths in load order (dependencies first), from the
# depends= field of each .ko (the extracted deb has no modules.dep).
resolve_modules() { python3 "$T/scripts/resolve-modules.py" "$KMOD" "$@"; }

# ---------- L2 base ----------
build_l2_base() {
  local R=$OUT/l2-base
  rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,run,mods,l3,etc}
  cp $BUSYBOX "$R/bin/busybox"
  for a in $($BUSYBOX --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
  # virtio_net: L1 user networking for scenarios with host steps (VNC clients on the host)
  resolve_modules kvm_amd virtio_pci virtio_net > "$OUT/l2-modules.txt"
  while read -r m; do cp "$m" "$R/mods/"; basename "$m" .ko; done < "$OUT/l2-modules.txt" > "$R/mods/order"
  if [ -f "$OUT/devicemodel" ]; then cp "$OUT/devicemodel" "$R/bin/devicemodel"; fi
  cp "$OUT/qmp" "$R/bin/qmp"
  cp "$OUT/pngcmp-static" "$R/bin/pngcmp"
  cp "$OUT/vncbench" "$R/bin/vncbench"
  # e2fsck (dynamic, Debian's) with its libraries, to check guest-made filesystems in L2
  local f l
  f=$(command -v e2fsck || echo /sbin/e2fsck)
  if [ -x "$f" ]; then
    cp "$f" "$R/sbin/e2fsck"
    for l in $(ldd "$f" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
  else
    log "warning: no e2fsck on the host; L2 will not have it"
  fi
  # Display devices (ours and QEMU alike): Debian's VGA BIOS ROMs and the VNC keymaps (-k).
  mkdir -p "$R/usr/share/seabios" "$R/usr/share/qemu/keymaps"
  # (bios.bin and bios-256k.bin too: seabios-vga boots SeaBIOS with -bios on ours as well)
  cp /usr/share/seabios/vgabios-stdvga.bin /usr/share/seabios/vgabios-cirrus.bin /usr/share/seabios/bios-256k.bin \
    /usr/share/seabios/bios.bin "$R/usr/share/seabios/"
  cp /usr/share/qemu/keymaps/en-us /usr/share/qemu/keymaps/de "$R/usr/share/qemu/keymaps/"
  cp "$VMLINUX" "$R/l3/vmlinux"
  cp "$T/l2/init" "$R/init"; cp "$T/l2/harness.sh" "$R/bin/harness.sh"; chmod +x "$R/init"
  mkcpio "$R" "$OUT/l2-base.cpio"
}

# ---------- L2 QEMU overlay ----------
build_l2_qemu() {
  local R=$OUT/l2-qemu Q
  Q=$(command -v qemu-system-x86_64)
  rm -rf "$R" && mkdir -p "$R/usr/bin" "$R/usr/share/qemu" "$R/usr/share/seabios"
  cp "$Q" "$R/usr/bin/qemu-system-x86_64"
  for l in $(ldd "$Q" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
  # firmware search path is <bindir>/../share/{qemu,seabios}; -M pc with -kernel needs SeaBIOS + linuxboot/pvh ROMs
  cp /usr/share/seabios/bios-256k.bin "$R/usr/share/seabios/"
  for f in linuxboot_dma.bin linuxboot.bin pvh.bin kvmvapic.bin multiboot.bin multiboot_dma.bin; do
    cp "/usr/share/qemu/$f" "$R/usr/share/qemu/"
  done
  mkcpio "$R" "$OUT/l2-qemu.cpio"
}

# ---------- per-scenario L3 initramfs ----------
build_l3() {
  local S=$1 name R modules="" tools="" t
  name=$(basename "$S")
  R=$OUT/scen/$name/l3
  rm -rf "$R" && mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,mods}
  cp $BUSYBOX "$R/bin/busybox"
  for a in $($BUSYBOX --list); do [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"; done
  cp "$T/l3/init" "$R/init"; chmod +x "$R/init"
  cp "$S/guest.sh" "$R/guest.sh"
  if [ -f "$S/options" ]; then
    modules=$(sed -n 's/^modules=["]\{0,1\}\([^"]*\)["]\{0,1\}$/\1/p' "$S/options")
    tools=$(sed -n 's/^guest_tools=["]\{0,1\}\([^"]*\)["]\{0,1\}$/\1/p' "$S/options")
  fi
  for t in $tools; do
    [ -x "$OUT/guest-tools/$t" ] || { log "$name: guest tool $t not found (tests/guest-tools/$t.c)"; return 1; }
    rm -f "$R/bin/$t"; cp "$OUT/guest-tools/$t" "$R/bin/$t"
  done
  : > "$R/mods/order"
  if [ -n "$modules" ]; then
    # shellcheck disable=SC2086
    resolve_modules $modules | while read -r m; do cp "$m" "$R/mods/"; basename "$m" .ko; done > "$R/mods/order"
  fi
  mkcpio "$R" "$OUT/scen/$name/initrd.cpio"
}

SECONDS=0
if [ -n "${NESTED_DM_BIN:-}" ]; then
  # A prebuilt device model (e.g. from another checkout) instead of building this tree's.
  log "using prebuilt device model $NESTED_DM_BIN"
  cp "$NESTED_DM_BIN" "$OUT/devicemodel"
elif ! (build_dm); then
  # With DM=qemu the suite can still run (comparisons, validating scenarios); with ours it cannot.
  [ "${NESTED_DM:-ours}" = qemu ] || { log "building devicemodel failed"; exit 1; }
  log "warning: building devicemodel failed; DM=qemu, so continuing without it"
  rm -f "$OUT/devicemodel"
fi
build_qmp || { log "building the qmp client failed"; exit 1; }
build_pngcmp || { log "building pngcmp failed"; exit 1; }
build_guest_tools || exit 1
build_l2_base
if [ "${NESTED_WITH_QEMU:-1}" = 1 ]; then build_l2_qemu; else rm -rf "$OUT/l2-qemu" "$OUT/l2-qemu.cpio"; fi
rm -rf "$OUT/scen"; mkdir -p "$OUT/scen"
for s in "$@"; do
  mkdir -p "$OUT/scen/$(basename "$s")"
  if [ -f "$s/guest.sh" ]; then build_l3 "$s"; fi
  if [ -f "$s/prepare.sh" ]; then
    # Test inputs (ISOs, images) are made here, never committed. Everything left in OUT goes
    # to /scen/<name>/ in L2 (uncompressed: keep it to a few MB).
    f=$OUT/scen/$(basename "$s")/files; mkdir -p "$f"
    (cd "$s" && OUT=$f ROOT=$ROOT GUEST_TOOLS=$OUT/guest-tools bash ./prepare.sh >&2) \
      || { log "$(basename "$s")/prepare.sh failed"; exit 1; }
  fi
done
log "images ready in $OUT ($(du -sh "$OUT/l2-base.cpio" | cut -f1) base$( [ -f "$OUT/l2-qemu.cpio" ] && echo " + $(du -sh "$OUT/l2-qemu.cpio" | cut -f1) qemu"), ${SECONDS}s)"

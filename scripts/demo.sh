#!/bin/bash
# Main job: boot the bundled demo guest (Debian's kernel + a busybox initramfs) on our device
# model and print what the guest sees. Sets everything up on a fresh Debian machine.
#
# DEMO_MODE=direct  run devicemodel here (needs a KVM that boots ordinary guests: kvm_intel/kvm_amd)
# DEMO_MODE=nested  run it inside nested QEMU (L1 QEMU TCG -> L2 Debian + KVM -> devicemodel -> guest)
# default: direct when kvm_intel or kvm_amd is loaded, nested otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
tests/scripts/setup.sh >/dev/null
. "${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests/setup.env"
MODE=${DEMO_MODE:-}
if [ -z "$MODE" ]; then
  if grep -qE '^(kvm_intel|kvm_amd) ' /proc/modules 2>/dev/null && [ -w /dev/kvm ]; then MODE=direct; else MODE=nested; fi
fi
OUT=$ROOT/target/demo; rm -rf "$OUT"; mkdir -p "$OUT/l3/bin"
cp /bin/busybox "$OUT/l3/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$OUT/l3/bin/$a"; done
install -m 755 demo/init "$OUT/l3/init"
(cd "$OUT/l3" && find . | cpio -o -H newc --quiet) > "$OUT/initrd.cpio"
ARGS=(-accel kvm -m 256M -smp 2 -nodefaults -display none -serial stdio -no-reboot -kernel)
APPEND="console=ttyS0 quiet pci=noearly panic=-1"
echo "demo: mode $MODE" >&2
if [ "$MODE" = direct ]; then
  cargo build --release -q -p devicemodel
  exec target/release/devicemodel "${ARGS[@]}" "$VMLINUX" -initrd "$OUT/initrd.cpio" -append "$APPEND"
fi
tests/scripts/build-images.sh >/dev/null 2>"$OUT/build.log" || { cat "$OUT/build.log" >&2; exit 1; }
mkdir -p "$OUT/ov/scen/demo"
cp "$OUT/initrd.cpio" "$OUT/ov/scen/demo/initrd.cpio"
cat > "$OUT/ov/scen/demo/host.sh" <<EOS
echo "demo: L2 is up; starting: devicemodel ${ARGS[*]} /l3/vmlinux -initrd initrd.cpio -append \"$APPEND\""
/bin/devicemodel ${ARGS[*]} /l3/vmlinux -initrd \$PWD/initrd.cpio -append "$APPEND"
echo "demo: devicemodel exited with status \$?"
EOS
echo demo > "$OUT/ov/scen/list"; echo 300 > "$OUT/ov/scen/demo/timeout"; echo DM=ours > "$OUT/ov/scen/env"
(cd "$OUT/ov" && find . | cpio -o -H newc --quiet) > "$OUT/overlay.cpio"
cat target/nested/l2-base.cpio "$OUT/overlay.cpio" > "$OUT/l2.cpio"
echo "demo: booting L1 QEMU (TCG) with a Debian L2 that runs our devicemodel under KVM; about 15 s" >&2
timeout 600 qemu-system-x86_64 -accel tcg -cpu max -m 2G -smp 1 -nodefaults -no-user-config -display none \
  -serial stdio -no-reboot -kernel "$VMLINUZ" -initrd "$OUT/l2.cpio" -append "console=ttyS0 panic=-1 quiet" </dev/null \
  | tr -d "\r" | tee "$OUT/console.log" | sed -n '/^demo: /p; /^====/,/^==== demo guest: powering/p; /@@END/q'

# pci_intx NAME DM: the Linux HVM guest (linux.iso: Debian's kernel + busybox initramfs, guest/linux-init) with
# QEMU's edu test device added by `device_model_args_hvm = [ "-device", "edu" ]`. The guest binds Linux's
# uio_pci_generic to it and raises its INTx 5 times (tests/guest-tools/uiotest.c); each must reach the guest, and
# the kernel's /proc/interrupts line for uio_pci_generic must count exactly 5. On ours the interrupt path is
# XEN_DMOP_set_pci_intx_level (devicemodel/src/xen/interrupts.rs) into Xen's IO-APIC/PIRQ emulation.
# Prints `BOOT name=.. dm=.. create_to_init_s=..` (xl create -> the guest's /init running).
# (uiotest's `reroute` is not run here: Xen delivers a PCI INTx on its fixed GSI (16 + a function of slot and pin)
# whatever the PIIX3 PIRQ route says; the route only steers the ISA/PIC copy. See tests/xen/README.md.)
# serial_or_death NAME TEXT SECS: like wait_serial, but gives up as soon as the domain is gone (a panicking guest
# reboots with panic=-1, and on_reboot=destroy removes it); sets SEEN_AT. Checks the domain every 2 s (xl forks).
serial_or_death() {
  local f n=0
  f=$(serial_log "$1")
  while [ $n -lt $(($3 * 5)) ]; do
    if [ -s "$f" ] && grep -q "$2" "$f" 2>/dev/null; then SEEN_AT=$(up); return 0; fi
    if [ $((n % 10)) = 9 ] && [ -z "$(domid "$1")" ]; then echo "domain $1 is gone (after $(since "$CREATE_T0")s)"; return 1; fi
    sleep 0.2; n=$((n + 1))
  done
  return 1
}
serial_tail() { echo "-- serial $(serial_log "$1") ($(wc -c < "$(serial_log "$1")") bytes), last 3 KB"; tail -c 3000 "$(serial_log "$1")"; echo; }

pci_intx() {
  local name=$1 dm=$2 cfg f t argv n
  cfg=/run/cfg/$name.cfg
  guest_cfg "$name" "$dm" /xen/linux.iso
  # Debian's kernel and its initramfs need more than the CD payload's 32 MB
  sed -i 's/^memory = .*/memory = 128/' "$cfg"
  echo 'device_model_args_hvm = [ "-device", "edu", "-device", "virtio-rng-pci,disable-legacy=on" ]' >> "$cfg"
  create "$name"
  create_wait "$name" 90
  if [ "$XLRC" != 0 ]; then bad "xl create rc=$XLRC"; diag "$name"; return 1; fi
  argv=$(grep 'libxl__spawn_local_dm: Domain [0-9]*:  ' "/var/log/xen/xl-create-$name.log" | sed 's/.*:  //' | tr '\n' ' ')
  case " $argv" in
    *" -device edu "*) ok "libxl passed the device model -device edu";;
    *) bad "no -device edu in the device model's argv: $argv";;
  esac
  f=$(serial_log "$name")
  if ! serial_or_death "$name" XENLINUX-UP 540; then
    bad "Linux's /init did not start (no XENLINUX-UP on COM1)"; serial_tail "$name"; diag "$name"; return 1
  fi
  echo "BOOT name=$name dm=$dm xl_rc=0 create_to_init_s=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $CREATE_T0}")"
  t=$SEEN_AT
  if ! serial_or_death "$name" XENLINUX-DONE 120; then
    bad "the INTx test did not finish (no XENLINUX-DONE)"; serial_tail "$name"; diag "$name"; return 1
  fi
  echo "INTX name=$name test_s=$(awk "BEGIN{printf \"%.2f\", $SEEN_AT - $t}")"
  echo "-- serial ($(wc -c < "$f") bytes)"; cat "$f"; echo
  grep -q '^XENLINUX driver uio_pci_generic' "$f" && ok "uio_pci_generic bound to edu" || bad "uio_pci_generic did not bind"
  grep -q '^uiotest ident=010000ed' "$f" && ok "edu identifies through BAR0" || bad "edu's BAR0 ident is not 010000ed"
  grep -q '^uiotest irqs received=5 of 5' "$f" && ok "uiotest received 5 of 5 interrupts" || bad "uiotest did not receive 5 of 5"
  grep -q '^XENLINUX-PROCIRQ .* uio_pci_generic total=5 ' "$f" && ok "/proc/interrupts counts 5 for uio_pci_generic" \
    || bad "/proc/interrupts does not count 5 for uio_pci_generic: $(grep XENLINUX-PROCIRQ "$f")"
  # virtio-rng-pci: Linux's virtio_rng reads /dev/hwrng through it, and its interrupts are counted (the line says
  # whether Linux chose MSI-X, a Xen event-channel PIRQ through XEN_DMOP_inject_msi on ours, or INTx).
  grep -q '^XENLINUX-HWRNG rng=virtio_rng.0 differ=yes' "$f" && ok "virtio_rng feeds /dev/hwrng" \
    || bad "virtio_rng did not feed /dev/hwrng: $(grep XENLINUX-HWRNG "$f")"
  grep -Eq '^XENLINUX-VIRTIOIRQ total=[1-9]' "$f" && ok "virtio interrupts counted: $(grep XENLINUX-VIRTIOIRQ "$f")" \
    || bad "no virtio interrupts counted: $(grep XENLINUX-VIRTIOIRQ "$f")"
  grep -q '^XENLINUX-DONE rc=0' "$f" && ok "guest test rc=0" || bad "guest test failed: $(grep XENLINUX-DONE "$f")"
  # libxl gives every HVM guest a PV keyboard (vkbd) and Debian's kernel has xen-kbdfront built in: its boot waits
  # up to 30 s for that device unless the backend connects (qemu-xen: vkbd=Connected) or is Closed (ours, which does
  # not serve it: vkbd=Closed).
  grep -q '^XENLINUX-XENBUS waits=0 ' "$f" && ok "the boot did not wait for PV devices" \
    || bad "the boot waited for PV devices (xenbus_probe_frontend: Waiting for devices to initialise)"
  # busybox poweroff -f: ACPI S5 through the device model's PM1a control; on_poweroff=destroy removes the domain.
  n=0; while [ -n "$(domid "$name")" ] && [ $n -lt 150 ]; do sleep 0.2; n=$((n + 1)); done
  if [ -n "$(domid "$name")" ]; then bad "the guest did not power off within 30 s of its test"; diag "$name"; return 1; fi
  ok "the guest powered off (domain gone)"
  if [ "$dm" = ours ]; then
    echo "-- /var/log/xen/qemu-dm-$name.log (our log), last 15 lines"; tail -15 "/var/log/xen/qemu-dm-$name.log"
  fi
  [ "$FAILS" = 0 ] || diag "$name"
}

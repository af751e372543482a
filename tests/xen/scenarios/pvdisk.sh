# pvdisk NAME DM: an HVM guest with a raw disk image served by the qdisk backend,
# `disk=['format=raw, vdev=hda, access=rw, backendtype=qdisk, target=/xen/disk.raw', <the CD>]`: libxl passes the
# device model `-drive file=/xen/disk.raw,if=ide,index=0,media=disk,format=raw` and writes a qdisk PV backend for hda
# (and, for HVM guests always, one for the CD) into xenstore, which qemu-xen serves in-process and we do not. Records
# what xl, libxl and xenstore do, and checks that the emulated IDE disk reaches the guest (SeaBIOS probes it; the device
# model's QMP lists it), that xl block-attach/block-detach and xl destroy stay prompt.
# (A plain `file:/xen/disk.raw,hda,w` does NOT get qdisk on a Linux dom0: libxl picks phy for regular files, i.e.
# blkback + the block hotplug script, which this dom0 lacks: see pvdisk_file_phy.)
. /xen/cdcheck.sh
PVDISK_IMG=/xen/disk.raw
PVDISK_MB=8
pvdisk_image() {
  [ -f $PVDISK_IMG ] && return
  dd if=/dev/zero of=$PVDISK_IMG bs=1M count=$PVDISK_MB 2>/dev/null
  # a recognisable first sector (not bootable: the guest boots the CD)
  printf 'XENDISK-SIGNATURE raw disk for the pvdisk scenarios\n' | dd of=$PVDISK_IMG conv=notrunc 2>/dev/null
}
# xs_dump PATH: every key under PATH, one `path = "value"` per line (or why not)
xs_dump() { xenstore-ls -f "$1" 2>&1 | sed 's/^/  /' | head -60; }
be_state() { xenstore-read "/local/domain/0/backend/qdisk/$1/$2/state" 2>/dev/null || echo none; }

pvdisk() {
  local name=$1 dm=$2 d p t rc e st secs log
  pvdisk_image
  guest_cfg "$name" "$dm"
  sed -i "s|^disk = .*|disk = [ \"format=raw, vdev=hda, access=rw, backendtype=qdisk, target=$PVDISK_IMG\", \"format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/xen/cd1.iso\" ]|" \
    "/run/cfg/$name.cfg"
  echo "-- config"; cat "/run/cfg/$name.cfg"
  create "$name"
  create_wait "$name" 90
  d=$(domid "$name"); p=$(dm_pid "$d")
  echo "PVDISK name=$name dm=$dm xl_create_rc=$XLRC xl_create_s=$(since "$CREATE_T0") domid=${d:-none} dm_pid=${p:-none}"
  if [ "$XLRC" != 0 ]; then bad "xl create rc=$XLRC"; diag "$name"; return; fi
  ok "xl create with a qdisk raw disk returned 0"
  wait_serial "$name" XENCD-MARKER 60 && ok "payload marker on COM1 (booted from the CD with the disk attached)" \
    || bad "no payload marker"

  echo "-- what libxl decided (xl -vvv create)"
  grep -E 'vdev=hda|vdev=hdc|qdisk|device_disk|QEMU_BACKEND|backend.*(768|5632)|768|5632' \
    "/var/log/xen/xl-create-$name.log" | grep -v 'watch w=' | head -30
  echo "-- device-model argv (from libxl): $(grep 'libxl__spawn_local_dm: Domain [0-9]*:  ' "/var/log/xen/xl-create-$name.log" \
    | sed 's/.*:  //' | tr '\n' ' ')"
  grep -q 'file=/xen/disk.raw,if=ide,index=0,media=disk,format=raw,cache=writeback' "/var/log/xen/xl-create-$name.log" \
    && ok "libxl gave the device model -drive file=/xen/disk.raw,if=ide,index=0,media=disk,format=raw" \
    || bad "no if=ide -drive for /xen/disk.raw in the argv"

  # give a device model that serves the backends time to move them on (qemu-xen: to 2 at once)
  sleep 2
  echo "-- xenstore /local/domain/0/backend/qdisk/$d"; xs_dump "/local/domain/0/backend/qdisk/$d"
  echo "-- xenstore /local/domain/$d/device/vbd"; xs_dump "/local/domain/$d/device/vbd"
  echo "-- xenstore /local/domain/0/device-model/$d"; xs_dump "/local/domain/0/device-model/$d"
  echo "-- xenstore /libxl/$d/device"; xs_dump "/libxl/$d/device"
  echo "PVDISK-XS name=$name dm=$dm hda_backend_state=$(be_state "$d" 768) hdc_backend_state=$(be_state "$d" 5632)" \
    "hda_frontend_state=$(xenstore-read "/local/domain/$d/device/vbd/768/state" 2>/dev/null || echo none)" \
    "dm_backends=$(xenstore-list "/local/domain/0/device-model/$d/backends" 2>/dev/null | tr '\n' ',' || true)"
  [ "$(xenstore-read "/local/domain/0/backend/qdisk/$d/768/params" 2>/dev/null)" = "aio:$PVDISK_IMG" ] \
    && ok "libxl wrote a qdisk backend for hda (params aio:$PVDISK_IMG)" || bad "no qdisk backend with params aio:$PVDISK_IMG for hda"
  if [ "$dm" = qemu ]; then
    [ "$(be_state "$d" 768)" = 2 ] && ok "qemu-xen serves the hda qdisk backend (state 2, InitWait for a frontend)" \
      || bad "qemu-xen left the hda qdisk backend in state $(be_state "$d" 768)"
  else
    [ "$(be_state "$d" 768)" = 1 ] && ok "we leave the hda qdisk backend unserved (state 1)" \
      || bad "hda qdisk backend in state $(be_state "$d" 768), expected 1 (unserved)"
    xenstore-exists "/local/domain/0/device-model/$d/backends/qdisk" 2>/dev/null \
      && bad "device-model/$d/backends/qdisk exists: we claim a backend we do not serve" \
      || ok "no device-model/$d/backends/qdisk (we do not claim to serve qdisk)"
    log=/var/log/xen/qemu-dm-$name.log
    echo "-- our log about PV backends"; grep -i -E 'qdisk|pv (disk|block)|backend' "$log" | head -10
    grep -q "qdisk.*$PVDISK_IMG" "$log" && ok "our log names the unserved qdisk backend for $PVDISK_IMG" \
      || bad "our log does not warn about the unserved qdisk backend for $PVDISK_IMG"
  fi

  # the emulated IDE disk: SeaBIOS (running in the guest) found it by ATA IDENTIFY; the device model lists it
  echo "-- SeaBIOS (xl dmesg) about drives"
  xl dmesg 2>&1 | grep "(d$d)" | grep -E 'ata[0-9]-[0-9]|drive 0x|Hard-Disk|DVD/CD' | head -8
  xl dmesg 2>&1 | grep "(d$d)" | grep -q "ata0-0: .*Hard-Disk ($PVDISK_MB MiBytes)" \
    && ok "SeaBIOS in the guest sees the emulated IDE disk ata0-0 ($PVDISK_MB MiB)" || bad "SeaBIOS did not report ata0-0 as a $PVDISK_MB MiB disk"
  e=$(qmp "$(qmp_sock "$d")" --timeout 10 --connect-wait 5 '{"execute":"query-block"}' 2>&1 | json_array_items | grep "$PVDISK_IMG")
  echo "query-block entries naming $PVDISK_IMG: $e"
  echo "$e" | grep -q '"ide0-hd0"' && ok "QMP query-block lists ide0-hd0 with $PVDISK_IMG" || bad "QMP query-block has no ide0-hd0 entry for $PVDISK_IMG"

  # hotplug: libxl writes another qdisk backend (PV only: it never hot-adds emulated IDE) and does not wait for it;
  # detaching a live domain's device waits for the backend to reach state 6 (Closed)
  [ -f /xen/disk2.raw ] || dd if=/dev/zero of=/xen/disk2.raw bs=1M count=4 2>/dev/null
  t=$(up); xl -vvv block-attach "$name" "format=raw, vdev=xvdb, access=rw, backendtype=qdisk, target=/xen/disk2.raw" > "/var/log/xen/xl-attach-$name.log" 2>&1; rc=$?
  echo "PVDISK-ATTACH name=$name dm=$dm rc=$rc xl_block_attach_s=$(since "$t")"
  sleep 2
  echo "-- after block-attach: backend/qdisk/$d/51728"; xs_dump "/local/domain/0/backend/qdisk/$d/51728"
  echo "PVDISK-XS name=$name dm=$dm xvdb_backend_state=$(be_state "$d" 51728)"
  [ $rc = 0 ] && ok "xl block-attach xvdb rc=0" || { bad "xl block-attach rc=$rc"; grep -v ' debug: ' "/var/log/xen/xl-attach-$name.log" | tail -5; }
  if [ "$dm" = ours ]; then
    grep -q "qdisk.*/xen/disk2.raw" /var/log/xen/qemu-dm-$name.log && ok "our log names the hotplugged unserved qdisk backend" \
      || bad "our log does not warn about the hotplugged qdisk backend /xen/disk2.raw"
  fi
  t=$(up); xl -vvv block-detach "$name" xvdb > "/var/log/xen/xl-detach-$name.log" 2>&1; rc=$?
  echo "PVDISK-DETACH name=$name dm=$dm rc=$rc xl_block_detach_s=$(since "$t")"
  grep -v ' debug: ' "/var/log/xen/xl-detach-$name.log" | grep -E -i 'imeout|unable|rror|fail|remove' | head -8
  xenstore-exists "/local/domain/0/backend/qdisk/$d/51728" 2>/dev/null && echo "xvdb backend still in xenstore after block-detach" \
    || echo "xvdb backend gone after block-detach"

  echo "-- /var/log/xen/qemu-dm-$name.log (device model stderr)"; head -40 "/var/log/xen/qemu-dm-$name.log"
  echo "-- /var/log/xen/xl-$name.log"; head -20 "/var/log/xen/xl-$name.log" 2>/dev/null

  t=$(up); xl -vvv destroy "$name" > "/var/log/xen/xl-destroy-$name.log" 2>&1; rc=$?; secs=$(since "$t")
  echo "PVDISK-DESTROY name=$name dm=$dm rc=$rc xl_destroy_s=$secs"
  echo "-- xl -vvv destroy: lines about the disks and timeouts"
  grep -E '768|5632|qdisk|vbd|imeout|QEMU|bodge|unable|rror' "/var/log/xen/xl-destroy-$name.log" | grep -v 'watch w=' | head -30
  [ $rc = 0 ] && ok "xl destroy rc=0" || bad "xl destroy rc=$rc"
  # libxl waits LIBXL_QEMU_BODGE_TIMEOUT (2 s) per paused domain's qdisk devices (in parallel), whoever the DM is
  awk "BEGIN{exit !($secs < 15)}" && ok "xl destroy took ${secs}s (< 15 s)" || bad "xl destroy took ${secs}s"
  n=0; while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && bad "device model $p still alive 5 s after destroy" || ok "device model gone"
  xenstore-exists "/local/domain/0/backend/qdisk/$d" 2>/dev/null && { bad "backend/qdisk/$d left in xenstore"; xs_dump "/local/domain/0/backend/qdisk/$d"; } \
    || ok "backend/qdisk/$d removed"
  xenstore-exists "/local/domain/$d" 2>/dev/null && bad "/local/domain/$d left" || ok "/local/domain/$d removed"
}

# pvdisk_file_phy NAME: `disk=['file:/xen/disk.raw,hda,w', <the CD>]` as users write it. libxl (libxl__device_disk_set_backend
# tries phy first; on Linux libxl__try_phy_backend accepts regular files) gives it the phy backend (backend/vbd, served by
# the dom0 kernel's blkback after the block hotplug script), not qdisk, and waits LIBXL_INIT_TIMEOUT (10 s) for the
# backend to reach state 2 before it starts any device model. This dom0 has neither blkback nor the hotplug scripts, so
# the create fails there, whichever device model is configured; what counts here is that it fails cleanly.
pvdisk_file_phy() {
  local name=$1
  pvdisk_image
  guest_cfg "$name" ours
  sed -i "s|^disk = .*|disk = [ \"file:$PVDISK_IMG,hda,w\", \"format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/xen/cd1.iso\" ]|" \
    "/run/cfg/$name.cfg"
  create "$name"
  create_wait "$name" 90
  echo "PVDISK-FILE name=$name xl_create_rc=$XLRC xl_create_s=$(since "$CREATE_T0")"
  grep -E 'vdev=hda|backend/vbd|unable to|launch_dm' "/var/log/xen/xl-create-$name.log" | grep -v 'watch w=' | head -12
  grep -q 'Disk vdev=hda, using backend phy' "/var/log/xen/xl-create-$name.log" \
    && ok "libxl picked the phy backend (vbd), not qdisk, for file: on a regular file" || bad "libxl did not pick phy for file:"
  [ "$XLRC" != 0 ] && ok "xl create failed (no blkback in this dom0): rc=$XLRC" || bad "xl create succeeded without blkback?"
  grep -q 'libxl__spawn_local_dm' "/var/log/xen/xl-create-$name.log" && bad "libxl started a device model" \
    || ok "libxl gave up before starting any device model"
  sleep 1
  [ -z "$(dm_procs)" ] && ok "no device model left" || bad "device-model processes left: $(dm_procs)"
  xl list 2>/dev/null | grep -q "^$name " && bad "domain $name left" || ok "no domain left"
}

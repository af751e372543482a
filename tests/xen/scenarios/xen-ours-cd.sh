# xl cd-eject / cd-insert on a running guest served by our device model (through its QMP socket).
. /xen/cdcheck.sh
guest_cfg oc ours
create oc
if ! create_wait oc 70; then bad "xl create rc=$XLRC"; diag oc; finish; fi
wait_serial oc XENCD-MARKER 45 && ok "payload marker on COM1" || echo "note: no payload marker (not needed here)"
cd_checks oc
[ "$FAILS" = 0 ] || diag oc
finish

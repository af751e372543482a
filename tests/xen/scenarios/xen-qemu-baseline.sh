# The harness itself, on Debian's qemu-xen: hvmloader + SeaBIOS boot the CD, the payload's marker and counter
# appear in the serial log, and xl cd-eject/cd-insert change the medium as QMP query-block/query-fdsets see it.
. /xen/cdcheck.sh
if ! boot_guest qb qemu; then bad "qemu-xen guest did not reach the payload marker"; diag qb; finish; fi
ok "payload marker on COM1"
if wait_count qb 3 15; then ok "counter reached $(last_count "$(serial_log qb)")"; else bad "counter stuck at $(last_count "$(serial_log qb)")"; fi
cd_checks qb
xl destroy qb || bad "xl destroy rc=$?"
finish

# A qdisk raw disk on our device model: the emulated IDE disk works, the qdisk PV backends libxl writes stay unserved
# (state 1, no device-model/<domid>/backends/qdisk), our log names them, xl block-attach/detach and xl destroy stay
# prompt. Then the `file:` spelling, which libxl gives to blkback (phy) instead. See pvdisk.sh.
. /xen/scenarios/pvdisk.sh
pvdisk od ours
cleanup_domains
pvdisk_file_phy of
finish

# Reference: a raw file disk (qdisk backend + emulated IDE disk) on Debian's qemu-xen. See pvdisk.sh.
. /xen/scenarios/pvdisk.sh
pvdisk qd qemu
finish

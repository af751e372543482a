# Reference for xen-ours-save-restore: the same save/restore on Debian's qemu-xen.
. /xen/scenarios/save-restore.sh
save_restore qs qemu
finish

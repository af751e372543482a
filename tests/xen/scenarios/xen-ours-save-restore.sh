# xl save + xl restore of a guest served by our device model: the payload's counter continues.
. /xen/scenarios/save-restore.sh
save_restore os ours
finish

# 1. With -no-reboot (the default in boot), a guest reset makes the device model exit 0.
boot
echo "no-reboot launch: rc=$?"
# 2. Without -no-reboot the machine resets and boots the guest again: stop it after the
#    second boot marker. A device model that exits or hangs on reset never shows it.
NO_REBOOT=
boot_until 2 L3-BOOTED
echo "reboot launch: rc=$?"

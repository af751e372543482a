echo "L3-BOOTED"
reboot -f
echo "L3-STILL-RUNNING"

echo "L3-POWEROFF"
poweroff -f
echo "L3-STILL-RUNNING"

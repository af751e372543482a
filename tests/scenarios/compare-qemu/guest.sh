echo "L3-UP $(cut -d' ' -f1 /proc/uptime)"
for d in /sys/bus/pci/devices/*; do echo "pci ${d##*/} $(cat $d/vendor):$(cat $d/device) $(cat $d/class)"; done

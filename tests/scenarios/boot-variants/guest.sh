echo "VARIANT cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(sed -n 's/MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) cmdline_has_variant=$(grep -c variant= /proc/cmdline)"
grep -o 'variant=[a-z0-9]*' /proc/cmdline

# A visible heartbeat: the host pauses and resumes the VM and watches it stop and go on.
i=0
while [ $i -lt 600 ]; do i=$((i + 1)); echo "TICK $i"; sleep 0.1; done

# Display benchmark load: idle at the fbcon text console, then full-screen redraws through DRM.
i=0; while [ ! -e /dev/fb0 ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
printf '\033[2J\033[Hidle console\n' > /dev/tty1
echo "@@G idle"; read -t 300 reply
fbpat drmloop 1024 768 1 30
echo GUEST-DONE

# The PS/2 keyboard and mouse as Linux finds them: atkbd (built in) and psmouse (the module,
# loaded by init), which probes the aux port for an IntelliMouse / Explorer mouse.
sleep 1
grep '^N: Name=' /proc/bus/input/devices | sed 's/^/INPUT /'
grep -q 'Name="AT Translated Set 2 keyboard"' /proc/bus/input/devices && echo PS2-KEYBOARD-OK
grep -q 'Name="ImExPS/2 Generic Explorer Mouse"' /proc/bus/input/devices && echo PS2-MOUSE-OK
grep -E 'i8042|serio|psmouse' /proc/interrupts | tr -s ' ' | sed 's/^/IRQ /'
dmesg | grep -iE 'i8042|psmouse|serio|input:' | sed 's/^/DMESG /'

# The RTC as Linux uses it: rtc-cmos's /proc view, busybox hwclock, and interrupts on /dev/rtc0.
echo "PROC-RTC $(grep -E '^rtc_(time|date)' /proc/driver/rtc | tr -s ' \t' ' ' | tr '\n' ' ')"
hwclock -r -u > /tmp/hw && echo "HWCLOCK-READ-OK $(cat /tmp/hw)"
hwclock -w -u && echo HWCLOCK-WRITE-OK
rtcctl; echo "RTCCTL rc=$?"
# Idle (nothing uses the RTC) while the host counts the device model's wake-ups.
echo IDLE-BEGIN
sleep 14
echo IDLE-END

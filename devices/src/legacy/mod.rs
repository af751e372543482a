//! ISA-era devices: CMOS RTC + NVRAM, 16550 serial, i8042, reset ports, debug exit.

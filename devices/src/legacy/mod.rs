//! ISA-era devices: CMOS RTC + NVRAM, 16550 serial, i8042, reset ports, debug exit.
//!
//! These are byte-wide ISA registers. A wider guest access is split into consecutive byte accesses
//! (what QEMU's memory core does for 1-byte-wide regions), so `outw` to 0x70 sets the CMOS index
//! and writes the data port in one go; bytes that land outside a device's ports read as all ones
//! and are dropped on write, like an unclaimed ISA cycle.

pub mod cmos;
pub mod debug_port;
pub mod i8042;
pub mod ps2_mouse;
pub mod reset;
pub mod serial;

pub use cmos::Cmos;
pub use debug_port::{DebugConsole, DebugExit};
pub use i8042::I8042;
pub use reset::{ResetControl, SystemControlPortA};
pub use serial::Serial;

/// Reads `data.len()` consecutive byte registers starting at `addr` through `read_byte`.
pub(crate) fn read_bytes(addr: u64, data: &mut [u8], mut read_byte: impl FnMut(u64) -> u8) {
    for (i, b) in data.iter_mut().enumerate() {
        *b = match addr.checked_add(i as u64) {
            Some(a) => read_byte(a),
            None => 0xff,
        };
    }
}

/// Writes `data` to consecutive byte registers starting at `addr` through `write_byte`.
pub(crate) fn write_bytes(addr: u64, data: &[u8], mut write_byte: impl FnMut(u64, u8)) {
    for (i, &b) in data.iter().enumerate() {
        if let Some(a) = addr.checked_add(i as u64) {
            write_byte(a, b);
        }
    }
}

//! Debug ports: QEMU's `isa-debug-exit` (tests end a run by writing an exit code) and the
//! Bochs/Xen debug console at 0xe9 (firmware and kernels print to it with single `out` bytes).

use std::io::Write;
use std::sync::Arc;

use crate::bus::BusDevice;
use crate::ratelimit::RateLimiter;
use crate::vm_control::{VmControl, VmRequest};

use super::{read_bytes, write_bytes};

/// The usual placement, as `-device isa-debug-exit,iobase=0xf4,iosize=4`.
pub const DEBUG_EXIT_PORT: u64 = 0xf4;
pub const DEBUG_EXIT_LEN: u64 = 4;

/// isa-debug-exit: a write of value `v` (of the access width, little-endian) asks the machine to
/// exit with status `(v << 1) | 1` (QEMU `hw/misc/debugexit.c`). Reads return 0.
pub struct DebugExit {
    base: u64,
    len: u64,
    vm: Arc<dyn VmControl>,
}

impl DebugExit {
    /// `base`/`len` are the `iobase`/`iosize` the device is registered at.
    pub fn new(base: u64, len: u64, vm: Arc<dyn VmControl>) -> Self {
        DebugExit { base, len, vm }
    }

    fn contains(&self, addr: u64, len: usize) -> bool {
        addr >= self.base && (addr - self.base).checked_add(len as u64).is_some_and(|end| end <= self.len)
    }
}

impl BusDevice for DebugExit {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        let fill = if self.contains(addr, data.len()) { 0 } else { 0xff };
        data.fill(fill);
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        if !self.contains(addr, data.len()) || data.is_empty() || data.len() > 4 {
            return;
        }
        let mut bytes = [0u8; 4];
        bytes[..data.len()].copy_from_slice(data);
        let code = u32::from_le_bytes(bytes);
        log::info!("guest wrote {code:#x} to the debug-exit port");
        self.vm.request(VmRequest::DebugExit(code));
    }
}

/// The Bochs/Xen debug console port.
pub const DEBUG_CONSOLE_PORT: u64 = crate::pc::layout::port::DEBUG_CONSOLE.0 as u64;
/// What a read of the port returns: Bochs' and QEMU's `debugcon` detection value.
const DEBUG_CONSOLE_READBACK: u8 = 0xe9;
/// A line longer than this is logged in pieces, so the guest cannot grow the buffer.
const MAX_LINE: usize = 256;

/// Port 0xe9 debug console: bytes are collected into lines and logged (rate-limited, since the
/// guest controls the volume), and optionally copied verbatim to a writer.
pub struct DebugConsole {
    line: Vec<u8>,
    out: Option<Box<dyn Write + Send>>,
    limiter: RateLimiter,
}

impl DebugConsole {
    pub fn new(out: Option<Box<dyn Write + Send>>) -> Self {
        DebugConsole { line: Vec::with_capacity(MAX_LINE), out, limiter: RateLimiter::new(50, 5) }
    }

    fn flush_line(&mut self) {
        if self.line.is_empty() {
            return;
        }
        if self.limiter.allow() {
            let dropped = self.limiter.take_suppressed();
            if dropped > 0 {
                log::info!("guest debug console: ({dropped} lines suppressed)");
            }
            log::info!("guest debug console: {}", String::from_utf8_lossy(&self.line).trim_end());
        }
        self.line.clear();
    }

    fn write_byte(&mut self, byte: u8) {
        if let Some(out) = self.out.as_mut() {
            if out.write_all(&[byte]).and_then(|_| if byte == b'\n' { out.flush() } else { Ok(()) }).is_err() {
                crate::guest_warn!("debug console output failed; dropping the writer");
                self.out = None;
            }
        }
        match byte {
            b'\n' => self.flush_line(),
            b'\r' => {}
            _ => {
                self.line.push(byte);
                if self.line.len() >= MAX_LINE {
                    self.flush_line();
                }
            }
        }
    }
}

impl BusDevice for DebugConsole {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| if a == DEBUG_CONSOLE_PORT { DEBUG_CONSOLE_READBACK } else { 0xff });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| {
            if a == DEBUG_CONSOLE_PORT {
                self.write_byte(v)
            }
        });
    }
}

impl Drop for DebugConsole {
    fn drop(&mut self) {
        self.flush_line();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm_control::RecordingVmControl;

    use crate::test_support::SharedBuf;

    #[test]
    fn debug_exit_reports_the_written_value() {
        let vm = Arc::new(RecordingVmControl::default());
        let mut dev = DebugExit::new(DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, vm.clone());
        dev.write(0xf4, &[0x10]);
        dev.write(0xf4, &0x1234_5678u32.to_le_bytes());
        dev.write(0xf6, &[0x01, 0x00]);
        assert_eq!(
            vm.take(),
            vec![VmRequest::DebugExit(0x10), VmRequest::DebugExit(0x1234_5678), VmRequest::DebugExit(1)]
        );
        // Outside the device's window: nothing.
        dev.write(0xf6, &[1, 2, 3, 4]);
        dev.write(0x80, &[1]);
        let mut d = [0u8; 4];
        dev.read(u64::MAX, &mut d);
        assert!(vm.take().is_empty());
    }

    #[test]
    fn debug_console_forwards_bytes_and_reads_e9() {
        let buf = SharedBuf::default();
        let mut con = DebugConsole::new(Some(Box::new(buf.clone())));
        for &b in b"SeaBIOS\r\nline two\n" {
            con.write(0xe9, &[b]);
        }
        assert_eq!(buf.0.lock().unwrap().as_slice(), b"SeaBIOS\r\nline two\n");
        let mut d = [0u8];
        con.read(0xe9, &mut d);
        assert_eq!(d, [0xe9]);
        // A guest that never sends a newline cannot grow the line buffer without bound.
        for _ in 0..10_000 {
            con.write(0xe9, b"x");
        }
        assert!(con.line.len() < MAX_LINE);
        // Wide accesses only reach 0xe9 with their first byte.
        con.write(0xe9, b"yz");
        assert_eq!(buf.0.lock().unwrap().last(), Some(&b'y'));
    }
}

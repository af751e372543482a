//! 16550A UART (8 registers from its base port, e.g. COM1 0x3f8 IRQ 4, COM2 0x2f8 IRQ 3) built on
//! `vm_superio::Serial`.
//!
//! vm-superio calls its `Trigger` whenever a new enabled interrupt condition arises (received
//! data, or the transmitter holding register becoming empty, including when the guest enables
//! IER.ETBEI while THR is empty, which Linux's 8250 driver checks at startup). ISA serial IRQs are
//! edge-triggered, so each trigger is one `pulse()` of the line. Interrupt identification, FIFO
//! reporting (IIR bits 7:6 = 11, a 16550A) and loopback are the crate's.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use crate::bus::BusDevice;
use crate::interrupt::InterruptLine;

use super::{read_bytes, write_bytes};

/// Number of I/O ports a 16550 decodes.
pub const SERIAL_PORT_LEN: u64 = 8;
/// Host input waiting for room in the 64-byte receive FIFO is capped at this many bytes.
const MAX_PENDING_INPUT: usize = 64 * 1024;
/// The receive FIFO of a 16550A (vm-superio's).
const FIFO_SIZE: usize = 64;
/// Receiver Buffer Register offset (with DLAB clear).
const RBR: u8 = 0;
/// Line Control Register offset; bit 7 is DLAB.
const LCR: u8 = 3;

/// Adapts our interrupt line to vm-superio's trigger: one edge per trigger.
pub struct IrqTrigger(Arc<dyn InterruptLine>);

impl vm_superio::Trigger for IrqTrigger {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.pulse();
        Ok(())
    }
}

type Uart = vm_superio::Serial<IrqTrigger, vm_superio::serial::NoEvents, Box<dyn Write + Send>>;

/// One COM port.
pub struct Serial {
    base: u64,
    uart: Uart,
    /// Host input that did not fit in the receive FIFO yet; moved in as the guest drains it.
    pending_input: VecDeque<u8>,
}

impl Serial {
    /// A UART at ports `base..base + 8` whose transmitted bytes go to `out` and whose interrupt
    /// output is `irq`.
    pub fn new(base: u64, irq: Arc<dyn InterruptLine>, out: Box<dyn Write + Send>) -> Self {
        Serial { base, uart: vm_superio::Serial::new(IrqTrigger(irq), out), pending_input: VecDeque::new() }
    }

    /// Queues bytes from the host for the guest to receive. Returns how many were accepted (the
    /// rest are dropped once `MAX_PENDING_INPUT` bytes wait for the guest).
    pub fn enqueue_input(&mut self, input: &[u8]) -> usize {
        let room = MAX_PENDING_INPUT.saturating_sub(self.pending_input.len());
        let accepted = input.len().min(room);
        self.pending_input.extend(&input[..accepted]);
        self.fill_fifo();
        accepted
    }

    /// Bytes the host has queued that the guest has not yet read (FIFO plus backlog).
    pub fn pending_input_len(&self) -> usize {
        self.pending_input.len() + FIFO_SIZE.saturating_sub(self.uart.fifo_capacity())
    }

    fn fill_fifo(&mut self) {
        let room = self.uart.fifo_capacity();
        if room == 0 || self.pending_input.is_empty() {
            return;
        }
        let n = room.min(self.pending_input.len());
        let chunk: Vec<u8> = self.pending_input.drain(..n).collect();
        // In loopback mode the UART refuses external input; keep it for later.
        match self.uart.enqueue_raw_bytes(&chunk) {
            Ok(taken) if taken == chunk.len() => {}
            Ok(taken) => {
                for &b in chunk[taken..].iter().rev() {
                    self.pending_input.push_front(b);
                }
            }
            Err(_) => {
                for &b in chunk.iter().rev() {
                    self.pending_input.push_front(b);
                }
            }
        }
    }

    fn offset(&self, addr: u64) -> Option<u8> {
        addr.checked_sub(self.base).filter(|&o| o < SERIAL_PORT_LEN).map(|o| o as u8)
    }

    fn read_byte(&mut self, offset: u8) -> u8 {
        let dlab = self.uart.read(LCR) & 0x80 != 0;
        let value = self.uart.read(offset);
        // Refill from the backlog once the guest has drained the FIFO, so a long paste costs one
        // received-data interrupt per FIFO load rather than one per byte.
        if offset == RBR && !dlab && self.uart.fifo_capacity() == FIFO_SIZE {
            self.fill_fifo();
        }
        value
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        if let Err(e) = self.uart.write(offset, value) {
            // Only the host side can fail (the output writer); the byte is lost, as on a wire.
            crate::guest_warn!("serial {:#x}: {e:?}", self.base);
        }
        // Leaving loopback mode may make room for held-back input.
        if offset == 4 {
            self.fill_fifo();
        }
    }
}

impl BusDevice for Serial {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| match self.offset(a) {
            Some(o) => self.read_byte(o),
            None => 0xff,
        });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| {
            if let Some(o) = self.offset(a) {
                self.write_byte(o, v)
            }
        });
    }
}

// 16550 register bits checked on restore (vm-superio keeps these registers as plain bytes).
const IER_VALID: u8 = 0x0f;
const IIR_NONE: u8 = 0x01;
const IIR_SOURCES: u8 = 0x06;
const LSR_DATA_READY: u8 = 0x01;

impl crate::snapshot::Snapshot for Serial {
    const ID: &'static str = "serial";
    const VERSION: u16 = 1;

    /// The UART's registers and receive FIFO, through vm-superio's `SerialState` (the same set
    /// as QEMU's `vmstate_serial`: divisor, IER, IIR, LCR, MCR, LSR, MSR, SCR, FIFO). Host input
    /// still waiting outside the FIFO is the host's and is not saved (QEMU does not save chardev
    /// buffers either).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        let s = self.uart.state();
        for b in [
            s.baud_divisor_low,
            s.baud_divisor_high,
            s.interrupt_enable,
            s.interrupt_identification,
            s.line_control,
            s.line_status,
            s.modem_control,
            s.modem_status,
            s.scratch,
        ] {
            w.u8(b);
        }
        w.blob(&s.in_buffer);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let state = vm_superio::serial::SerialState {
            baud_divisor_low: r.u8("dll")?,
            baud_divisor_high: r.u8("dlm")?,
            interrupt_enable: r.u8_where("ier", |v| v & !IER_VALID == 0, "an IER value (bits 3:0)")?,
            // No interrupt, or a set of the two sources vm-superio raises (THR empty, data).
            interrupt_identification: r.u8_where(
                "iir",
                |v| v == IIR_NONE || (v != 0 && v & !IIR_SOURCES == 0),
                "an interrupt identification vm-superio produces",
            )?,
            line_control: r.u8("lcr")?,
            line_status: r.u8("lsr")?,
            modem_control: r.u8("mcr")?,
            modem_status: r.u8("msr")?,
            scratch: r.u8("scr")?,
            in_buffer: r.blob("rx_fifo", FIFO_SIZE)?,
        };
        if (state.line_status & LSR_DATA_READY != 0) == state.in_buffer.is_empty() {
            return Err(r.invalid("lsr", "Data Ready disagrees with the receive FIFO"));
        }
        r.finish()?;
        let IrqTrigger(line) = self.uart.interrupt_evt();
        let trigger = IrqTrigger(line.clone());
        let sink: Box<dyn Write + Send> = Box::new(std::io::sink());
        let mut uart = vm_superio::Serial::from_state(&state, trigger, vm_superio::serial::NoEvents, sink)
            .map_err(|e| r.invalid("rx_fifo", format!("{e:?}")))?;
        // Keep the host side (output) of the port.
        std::mem::swap(uart.writer_mut(), self.uart.writer_mut());
        self.uart = uart;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt::RecordingLine;

    const COM1: u64 = 0x3f8;
    const IER: u64 = COM1 + 1;
    const IIR: u64 = COM1 + 2;
    const LSR: u64 = COM1 + 5;

    use crate::test_support::SharedBuf;

    fn com1() -> (Serial, Arc<RecordingLine>, SharedBuf) {
        let line = Arc::new(RecordingLine::default());
        let out = SharedBuf::default();
        (Serial::new(COM1, line.clone(), Box::new(out.clone())), line, out)
    }

    fn inb(s: &mut Serial, port: u64) -> u8 {
        let mut d = [0u8];
        s.read(port, &mut d);
        d[0]
    }

    #[test]
    fn bytes_written_to_thr_reach_the_output() {
        let (mut s, _, out) = com1();
        for &b in b"hello\n" {
            // What a polling console does: wait for THRE, then write.
            assert_ne!(inb(&mut s, LSR) & 0x20, 0);
            s.write(COM1, &[b]);
        }
        assert_eq!(out.0.lock().unwrap().as_slice(), b"hello\n");
    }

    #[test]
    fn enabling_the_thre_interrupt_pulses_the_line_every_time_like_linux_probes() {
        let (mut s, line, _) = com1();
        // serial8250_do_startup's THRE re-assert test.
        s.write(IER, &[0x02]);
        assert_eq!(line.rising_edges(), 1);
        assert_eq!(inb(&mut s, IIR) & 0x0f, 0x02, "IIR must say THR empty");
        s.write(IER, &[0x00]);
        s.write(IER, &[0x02]);
        assert_eq!(line.rising_edges(), 2);
        assert_eq!(inb(&mut s, IIR) & 0x0f, 0x02);
        assert_eq!(inb(&mut s, IIR) & 0xc1, 0xc1, "no interrupt pending, FIFOs enabled (16550A)");
    }

    #[test]
    fn host_input_is_readable_from_rbr_with_data_ready() {
        let (mut s, line, _) = com1();
        s.write(IER, &[0x01]);
        assert_eq!(inb(&mut s, LSR) & 0x01, 0);
        let input: Vec<u8> = (0..100u8).collect();
        assert_eq!(s.enqueue_input(&input), 100);
        assert!(line.rising_edges() >= 1, "received data interrupt");
        let mut got = Vec::new();
        while inb(&mut s, LSR) & 0x01 != 0 && got.len() < 1000 {
            got.push(inb(&mut s, COM1));
        }
        // More than the 64-byte FIFO: the backlog followed as the guest drained it, with one
        // received-data interrupt per FIFO load.
        assert_eq!(got, input);
        assert_eq!(line.rising_edges(), 2);
    }

    #[test]
    fn divisor_latch_and_scratch_do_not_eat_input() {
        let (mut s, _, _) = com1();
        s.enqueue_input(b"A");
        s.write(COM1 + 3, &[0x83]); // DLAB on
        s.write(COM1, &[0x01]);
        assert_eq!(inb(&mut s, COM1), 0x01);
        s.write(COM1 + 3, &[0x03]);
        s.write(COM1 + 7, &[0x5a]);
        assert_eq!(inb(&mut s, COM1 + 7), 0x5a);
        assert_eq!(inb(&mut s, COM1), b'A');
    }

    #[test]
    fn any_access_is_safe() {
        let (mut s, _, _) = com1();
        for addr in [0u64, COM1 - 1, COM1, COM1 + 5, COM1 + 7, COM1 + 8, u64::MAX - 1, u64::MAX] {
            for len in 1..=4 {
                let mut d = vec![0u8; len];
                s.read(addr, &mut d);
                s.write(addr, &[0xff; 4][..len]);
            }
        }
    }
}

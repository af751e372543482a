//! QEMU's `edu` device (`-device edu`), 1234:11e8: the test PCI function for the machine's
//! interrupt paths. A guest raises an interrupt by writing the raise register and acknowledges
//! it with the acknowledge register, and the device interrupts the way the guest set it up: MSI
//! when enabled, otherwise its INTA# pin (level, held until acknowledged). Linux's
//! `uio_pci_generic` binds to it unmodified (it masks INTx with Interrupt Disable, which the
//! [`PciFunction`] base implements) and counts its interrupts.
//!
//! Differences from QEMU, none visible to a driver that follows the spec: the factorial and DMA
//! complete at once instead of on a worker thread or after a 100 ms timer (status bits and
//! interrupts are the same), and a DMA whose device-side range falls outside the 4 KiB buffer is
//! refused (QEMU aborts the whole process) and finishes without moving data.

pub mod spec;

use crate::interrupt::IntxPin;
use crate::pci::config::{BarKind, PciIds};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::snapshot::{Snapshot, StateError, StateReader, StateWriter};
use spec::*;

/// The edu device.
pub struct Edu {
    function: PciFunction,
    liveness: u32,
    factorial: u32,
    status: u32,
    irq_status: u32,
    dma_source: u64,
    dma_destination: u64,
    dma_count: u64,
    dma_command: u64,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for Edu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edu").field("status", &self.status).field("irq_status", &self.irq_status).finish()
    }
}

/// n! in 32-bit arithmetic, as the device computes it. Every product from 34! on has at least 32
/// factors of two, so it is 0 and the loop never runs more than 34 times.
fn factorial(n: u32) -> u32 {
    if n >= 34 {
        return 0;
    }
    (1..=n).fold(1u32, |acc, i| acc.wrapping_mul(i))
}

impl Edu {
    pub fn new(resources: PciResources) -> Self {
        let ids = PciIds {
            vendor_id: VENDOR_ID,
            device_id: DEVICE_ID,
            revision_id: REVISION,
            class: CLASS,
            subclass: SUBCLASS,
            ..Default::default()
        };
        let mut function = PciFunction::new(ids, Some(IntxPin::IntA), resources);
        // A fixed, valid layout: these cannot fail.
        let _ = function.config_mut().declare_bar(MMIO_BAR, BarKind::Memory32 { prefetchable: false }, MMIO_SIZE);
        let _ = function.add_msi(1, false);
        Edu {
            function,
            liveness: 0,
            factorial: 0,
            status: 0,
            irq_status: 0,
            dma_source: 0,
            dma_destination: 0,
            dma_count: 0,
            dma_command: 0,
            buffer: vec![0; DMA_BUFFER_SIZE as usize],
        }
    }

    fn raise(&mut self, bits: u32) {
        self.irq_status |= bits;
        if self.irq_status != 0 {
            // MSI is an edge: one message per raise. INTx is a level held until acknowledged.
            self.function.signal(0);
        }
    }

    fn acknowledge(&mut self, bits: u32) {
        self.irq_status &= !bits;
        if self.irq_status == 0 {
            self.function.set_intx_request(false);
        }
    }

    /// Runs the DMA the command register describes, then clears Run and interrupts if asked.
    fn run_dma(&mut self) {
        let count = self.dma_count;
        let to_ram = self.dma_command & DMA_TO_RAM != 0;
        let (device_addr, ram_addr) =
            if to_ram { (self.dma_source, self.dma_destination) } else { (self.dma_destination, self.dma_source) };
        let in_buffer = device_addr
            .checked_sub(DMA_BUFFER_START)
            .and_then(|off| off.checked_add(count).map(|end| (off, end)))
            .filter(|&(_, end)| end <= DMA_BUFFER_SIZE);
        match in_buffer {
            None => crate::guest_warn!(
                "edu: DMA of {count:#x} bytes at device address {device_addr:#x} is outside the buffer; refused"
            ),
            Some((off, end)) => {
                let ram = ram_addr & DMA_MASK;
                if ram != ram_addr {
                    crate::guest_warn!("edu: DMA address {ram_addr:#x} clamped to the 28-bit mask: {ram:#x}");
                }
                let dma = self.function.dma();
                let buf = &mut self.buffer[off as usize..end as usize];
                let result = if to_ram { dma.write(ram, buf) } else { dma.read(ram, buf) };
                if let Err(e) = result {
                    crate::guest_warn!("edu: DMA failed: {e}");
                }
            }
        }
        self.dma_command &= !DMA_RUN;
        if self.dma_command & DMA_IRQ != 0 {
            self.raise(IRQ_DMA_DONE);
        }
    }

    fn read_register(&self, offset: u64) -> Option<u64> {
        Some(match offset {
            IDENT => IDENT_VALUE as u64,
            LIVENESS => self.liveness as u64,
            FACTORIAL => self.factorial as u64,
            STATUS => self.status as u64,
            IRQ_STATUS => self.irq_status as u64,
            DMA_SOURCE => self.dma_source,
            DMA_DESTINATION => self.dma_destination,
            DMA_COUNT => self.dma_count,
            DMA_COMMAND => self.dma_command,
            _ => return None,
        })
    }

    fn write_register(&mut self, offset: u64, value: u64) {
        let v32 = value as u32;
        match offset {
            LIVENESS => self.liveness = !v32,
            FACTORIAL => {
                // A write while computing is ignored (QEMU: the unit is busy).
                if self.status & STATUS_COMPUTING == 0 {
                    self.factorial = factorial(v32);
                    if self.status & STATUS_IRQ_FACTORIAL != 0 {
                        self.raise(IRQ_FACTORIAL_DONE);
                    }
                }
            }
            STATUS => {
                self.status = (self.status & !STATUS_IRQ_FACTORIAL) | (v32 & STATUS_IRQ_FACTORIAL);
            }
            IRQ_RAISE => self.raise(v32),
            IRQ_ACK => self.acknowledge(v32),
            // The DMA registers are locked while a transfer runs; with transfers completing at
            // once that is never observable, but keep the rule.
            DMA_SOURCE if self.dma_command & DMA_RUN == 0 => self.dma_source = value,
            DMA_DESTINATION if self.dma_command & DMA_RUN == 0 => self.dma_destination = value,
            DMA_COUNT if self.dma_command & DMA_RUN == 0 => self.dma_count = value,
            DMA_COMMAND if value & DMA_RUN != 0 && self.dma_command & DMA_RUN == 0 => {
                self.dma_command = value;
                self.run_dma();
            }
            _ => crate::guest_unimp!("edu: write {value:#x} to BAR0 offset {offset:#x}"),
        }
    }

    /// Whether an access of `len` bytes at `offset` is one the device decodes.
    fn valid_access(offset: u64, len: usize) -> bool {
        if offset < 0x80 {
            len == 4
        } else {
            len == 4 || len == 8
        }
    }
}

impl PciFunctionDevice for Edu {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn read_bar(&mut self, bar: u8, offset: u64, data: &mut [u8]) {
        data.fill(0xff);
        if bar != MMIO_BAR || !Self::valid_access(offset, data.len()) {
            return;
        }
        if let Some(v) = self.read_register(offset) {
            let n = data.len();
            data.copy_from_slice(&v.to_le_bytes()[..n]);
        }
    }

    fn write_bar(&mut self, bar: u8, offset: u64, data: &[u8]) {
        if bar != MMIO_BAR || !Self::valid_access(offset, data.len()) {
            return;
        }
        let mut v = [0u8; 8];
        v[..data.len()].copy_from_slice(data);
        self.write_register(offset, u64::from_le_bytes(v));
    }
}

impl Snapshot for Edu {
    const ID: &'static str = "edu";
    const VERSION: u16 = 1;

    fn save(&self, w: &mut StateWriter) {
        self.function.save(w);
        w.u32(self.liveness);
        w.u32(self.factorial);
        w.u32(self.status);
        w.u32(self.irq_status);
        w.u64(self.dma_source);
        w.u64(self.dma_destination);
        w.u64(self.dma_count);
        w.u64(self.dma_command);
        w.bytes(&self.buffer);
    }

    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError> {
        let function = self.function.load(r)?;
        let liveness = r.u32("liveness")?;
        let factorial = r.u32("factorial")?;
        let status = r.u32("status")?;
        if status & !(STATUS_IRQ_FACTORIAL) != 0 {
            return Err(r.invalid("status", "only the interrupt-on-factorial bit can be set when idle"));
        }
        let irq_status = r.u32("irq_status")?;
        let dma_source = r.u64("dma_source")?;
        let dma_destination = r.u64("dma_destination")?;
        let dma_count = r.u64("dma_count")?;
        let dma_command = r.u64("dma_command")?;
        if dma_command & DMA_RUN != 0 {
            return Err(r.invalid("dma_command", "transfers complete at once, so none can be running"));
        }
        let buffer: [u8; DMA_BUFFER_SIZE as usize] = r.array("buffer")?;
        r.finish()?;
        self.function.apply(function);
        self.liveness = liveness;
        self.factorial = factorial;
        self.status = status;
        self.irq_status = irq_status;
        self.dma_source = dma_source;
        self.dma_destination = dma_destination;
        self.dma_count = dma_count;
        self.dma_command = dma_command;
        self.buffer.copy_from_slice(&buffer);
        // The pin follows the interrupt status (resync took Status bit 3 from the image).
        if !self.function.messages_enabled() {
            self.function.set_intx_request(self.irq_status != 0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

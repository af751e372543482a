//! One IDE channel: two device positions behind one set of command block and control block
//! ports, one interrupt line and one bus-master engine (ATA/ATAPI-6 chapter 7; SFF-8038i).
//!
//! Register writes reach both devices; reads come from the selected one. INTRQ is modelled per
//! channel as QEMU does: set when a device interrupts, cleared by a Status read, a new command
//! or a reset, and driven onto the line only while nIEN is clear (section 7.8).

use std::sync::Arc;

use super::busmaster::{BusMaster, EngineChange};
use super::drive::{Completion, DmaRequest, Drive, DriveKind};
use super::spec::{cmd, control, device, reg, status};
use crate::interrupt::InterruptLine;
use crate::memory::GuestMemory;

/// What a channel needs to run a bus-master transfer.
pub struct DmaContext<'a> {
    pub mem: &'a dyn GuestMemory,
    /// PCI command register Bus Master Enable: without it the engine cannot master the bus.
    pub bus_master_enabled: bool,
}

pub struct Channel {
    pub drives: [Drive; 2],
    pub(super) selected: usize,
    pub(super) control: u8,
    pub(super) irq_pending: bool,
    pub(super) line_level: bool,
    pub(super) irq: Arc<dyn InterruptLine>,
    pub bus_master: BusMaster,
    /// A command of device `.0` waiting for the bus master.
    pub(super) dma: Option<(usize, DmaRequest)>,
}

impl Channel {
    pub fn new(drives: [Drive; 2], irq: Arc<dyn InterruptLine>) -> Channel {
        Channel {
            drives,
            selected: 0,
            control: 0,
            irq_pending: false,
            line_level: false,
            irq,
            bus_master: BusMaster::default(),
            dma: None,
        }
    }

    fn any_present(&self) -> bool {
        self.drives.iter().any(Drive::present)
    }

    fn update_irq(&mut self) {
        let level = self.irq_pending && self.control & control::NIEN == 0;
        if level != self.line_level {
            self.line_level = level;
            self.irq.set_level(level);
        }
    }

    fn raise_irq(&mut self) {
        self.irq_pending = true;
        // SFF-8038i section 3.1.2: the Interrupt bit follows the device's INTRQ.
        self.bus_master.set_interrupt();
        self.update_irq();
    }

    fn lower_irq(&mut self) {
        self.irq_pending = false;
        self.update_irq();
    }

    /// Whether INTRQ is driven (for tests and state inspection).
    pub fn irq_level(&self) -> bool {
        self.line_level
    }

    fn complete(&mut self, unit: usize, completion: Completion, ctx: &DmaContext<'_>) {
        match completion {
            Completion::Quiet => {}
            Completion::Interrupt => self.raise_irq(),
            Completion::Dma(request) => {
                self.dma = Some((unit, request));
                self.run_dma(ctx);
            }
        }
    }

    /// Runs the waiting bus-master transfer if the engine is started and may master the bus.
    pub fn run_dma(&mut self, ctx: &DmaContext<'_>) {
        if !self.bus_master.active() || !ctx.bus_master_enabled {
            return;
        }
        let Some((unit, mut request)) = self.dma.take() else { return };
        let result = self.bus_master.transfer(ctx.mem, request.to_memory, request.len, |buf| request.io(buf));
        if let Err(fault) = &result {
            crate::guest_warn!("IDE: bus-master transfer of {} bytes failed: {fault:?}", request.len);
        }
        let completion = self.drives[unit].dma_done(result);
        self.complete(unit, completion, ctx);
    }

    /// A read from the command block at `offset` (0-7).
    pub fn read_command_block(&mut self, offset: u64, data: &mut [u8], ctx: &DmaContext<'_>) {
        if offset == reg::DATA {
            let unit = self.selected;
            let c = self.drives[unit].data_read(data);
            self.complete(unit, c, ctx);
            return;
        }
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = self.read_register(offset + i as u64);
        }
    }

    fn read_register(&mut self, register: u64) -> u8 {
        if !self.any_present() {
            // No devices: QEMU reads 0 (ATA-6 leaves it to the host adapter; hosts see no device).
            return 0;
        }
        let drive = &self.drives[self.selected];
        let hob = self.control & control::HOB != 0;
        let value = match register {
            // An absent device does not answer: its registers read 0 (as QEMU's do), except the
            // Device register, which reads back the selection. Hosts take this as "no device";
            // echoing the task file instead makes Linux's register probe (55/aa written to the
            // sector count and LBA low registers) find a phantom slave and time out on it.
            reg::DEVICE if !drive.present() => drive.regs.read(register, hob),
            _ if !drive.present() => 0,
            _ => drive.regs.read(register, hob),
        };
        if register == reg::STATUS_COMMAND {
            // Section 7.15: reading Status clears a pending interrupt.
            self.lower_irq();
        }
        value
    }

    /// A write to the command block at `offset` (0-7).
    pub fn write_command_block(&mut self, offset: u64, data: &[u8], ctx: &DmaContext<'_>) {
        if offset == reg::DATA {
            let unit = self.selected;
            let c = self.drives[unit].data_write(data);
            self.complete(unit, c, ctx);
            return;
        }
        for (i, &v) in data.iter().enumerate() {
            let register = offset + i as u64;
            match register {
                reg::STATUS_COMMAND => self.command(v, ctx),
                reg::ERROR_FEATURES..=reg::DEVICE => {
                    for d in &mut self.drives {
                        d.regs.write(register, v);
                    }
                    if register == reg::DEVICE {
                        self.selected = usize::from(v & device::DEV != 0);
                    }
                    // Section 7.8: a write to any command block register clears HOB.
                    self.control &= !control::HOB;
                }
                _ => {}
            }
        }
    }

    fn command(&mut self, command: u8, ctx: &DmaContext<'_>) {
        let unit = self.selected;
        let drive = &self.drives[unit];
        if !drive.present() {
            return;
        }
        // Only DEVICE RESET to a PACKET device is accepted while BSY or DRQ is set (section 9.3).
        let busy = drive.regs.status & (status::BSY | status::DRQ) != 0;
        if busy && !(command == cmd::DEVICE_RESET && drive.is_packet()) {
            crate::guest_warn!("IDE: command {command:#04x} written while the device is busy; ignored");
            return;
        }
        self.control &= !control::HOB;
        self.lower_irq();
        if self.dma.as_ref().is_some_and(|(u, _)| *u == unit) {
            self.dma = None;
        }
        if command == cmd::EXECUTE_DEVICE_DIAGNOSTIC {
            // Section 8.11 / 9.12: both devices run diagnostics, device 0 reports.
            self.dma = None;
            for d in self.drives.iter_mut().filter(|d| d.present()) {
                d.reset();
            }
            self.selected = 0;
            self.raise_irq();
            return;
        }
        let c = self.drives[unit].execute(command);
        self.complete(unit, c, ctx);
    }

    /// Alternate Status (section 7.3): the status without side effects.
    pub fn read_control(&self) -> u8 {
        let drive = &self.drives[self.selected];
        if drive.present() {
            drive.regs.status
        } else {
            0
        }
    }

    /// Device Control (section 7.8).
    pub fn write_control(&mut self, v: u8) {
        let old = self.control;
        self.control = v & (control::HOB | control::SRST | control::NIEN);
        if v & control::SRST != 0 && old & control::SRST == 0 {
            // Section 9.2: software reset starts; both devices are busy while SRST is set.
            self.dma = None;
            self.irq_pending = false;
            for d in self.drives.iter_mut().filter(|d| d.present()) {
                d.pio = None;
                d.regs.status = status::BSY;
            }
        } else if v & control::SRST == 0 && old & control::SRST != 0 {
            // Reset completes: signatures, device 0 selected, no interrupt.
            for d in self.drives.iter_mut().filter(|d| d.present()) {
                d.reset();
            }
            self.selected = 0;
        }
        self.update_irq();
    }

    /// A byte write to this channel's bus-master block.
    pub fn write_bus_master(&mut self, offset: u64, v: u8, ctx: &DmaContext<'_>) {
        if self.bus_master.write(offset, v) == EngineChange::Started {
            self.run_dma(ctx);
        }
    }

    /// Power-on / machine reset.
    pub fn hard_reset(&mut self) {
        self.control = 0;
        self.dma = None;
        self.irq_pending = false;
        self.bus_master.reset();
        self.selected = 0;
        for d in &mut self.drives {
            d.reset();
            if let DriveKind::Cdrom(cd) = &mut d.kind {
                cd.media.hard_reset();
            }
        }
        self.update_irq();
    }

    /// The host took the medium out of device `unit`: a command waiting for the bus master to
    /// read it ends with NOT READY instead of holding the old image open.
    pub fn medium_removed(&mut self, unit: usize) {
        if self.dma.as_ref().is_some_and(|(u, _)| *u == unit) {
            self.dma = None;
            if let Some(Completion::Interrupt) = self.drives[unit].fail_not_ready() {
                self.raise_irq();
            }
        }
    }

    /// Tray movements of the channel's drives since the last call: (unit, opened).
    pub fn take_tray_moves(&mut self) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for (unit, d) in self.drives.iter_mut().enumerate() {
            if let DriveKind::Cdrom(cd) = &mut d.kind {
                out.extend(cd.media.take_tray_moves().into_iter().map(|open| (unit, open)));
            }
        }
        out
    }
}

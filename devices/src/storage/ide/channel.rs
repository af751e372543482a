//! One IDE channel: two device positions behind one set of command block and control block
//! ports, one interrupt line and one bus-master engine (ATA/ATAPI-6 chapter 7; SFF-8038i).
//!
//! Register writes reach both devices; reads come from the selected one. INTRQ is modelled per
//! channel as QEMU does: set when a device interrupts, cleared by a Status read, a new command
//! or a reset, and driven onto the line only while nIEN is clear (section 7.8).
//!
//! A bus-master transfer runs on the channel's I/O worker when there is one (see `transfer`),
//! else on the calling thread before the register write returns (unit fuzzers, tools).

use std::sync::Arc;

use super::busmaster::{BusMaster, EngineChange};
use super::drive::{Completion, DmaRequest, Drive, DriveKind};
use super::spec::{cmd, control, device, reg, status};
use super::transfer::{Transfer, TransferIo, TransferResult};
use crate::interrupt::InterruptLine;
use crate::memory::GuestMemory;

/// What a channel needs to run a bus-master transfer.
pub struct DmaContext<'a> {
    pub mem: &'a Arc<dyn GuestMemory>,
    /// PCI command register Bus Master Enable: without it the engine cannot master the bus.
    pub bus_master_enabled: bool,
    /// Queues a transfer on the channel's I/O worker, which runs it and then calls
    /// [`Channel::transfer_done`] under the controller's lock. `None`: run it inline.
    pub submit: Option<&'a dyn Fn(Arc<Transfer>)>,
}

/// A transfer handed to the I/O worker and not completed yet.
pub(super) struct InFlight {
    unit: usize,
    transfer: Arc<Transfer>,
    /// The transfer uses up the PRD table (BM Active clears at the end).
    exhausted: bool,
    len: u64,
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
    /// The transfer the bus master is running.
    pub(super) in_flight: Option<InFlight>,
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
            in_flight: None,
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

    /// Starts the waiting bus-master transfer if the engine is started and may master the bus.
    /// The PRD table is walked here; a bad table ends the command at once, otherwise the data
    /// moves on the I/O worker (or inline without one).
    pub fn run_dma(&mut self, ctx: &DmaContext<'_>) {
        if !self.bus_master.active() || !ctx.bus_master_enabled || self.in_flight.is_some() {
            return;
        }
        let Some((unit, request)) = self.dma.take() else { return };
        let (regions, exhausted) = match self.bus_master.regions(&**ctx.mem, request.len) {
            Ok(r) => r,
            Err(fault) => return self.finish_transfer(unit, false, request.len, Err(fault), ctx),
        };
        let io = TransferIo { mem: ctx.mem.clone(), regions, to_memory: request.to_memory, data: request.data };
        let transfer = Transfer::new(io);
        match ctx.submit {
            Some(submit) => {
                self.in_flight = Some(InFlight { unit, transfer: transfer.clone(), exhausted, len: request.len });
                submit(transfer);
            }
            None => {
                let result = transfer.drain().unwrap_or(Ok(()));
                self.finish_transfer(unit, exhausted, request.len, result, ctx);
            }
        }
    }

    /// The I/O worker finished `transfer`'s data phase: complete its command, unless the
    /// channel has moved on (the transfer was cancelled or drained meanwhile).
    pub fn transfer_done(&mut self, transfer: &Arc<Transfer>, ctx: &DmaContext<'_>) {
        if !self.in_flight.as_ref().is_some_and(|f| Arc::ptr_eq(&f.transfer, transfer)) {
            return;
        }
        let Some(f) = self.in_flight.take() else { return };
        if let Some(result) = f.transfer.take_result() {
            self.finish_transfer(f.unit, f.exhausted, f.len, result, ctx);
        }
    }

    fn finish_transfer(
        &mut self,
        unit: usize,
        exhausted: bool,
        len: u64,
        result: TransferResult,
        ctx: &DmaContext<'_>,
    ) {
        self.bus_master.finish(&result, exhausted);
        if let Err(fault) = &result {
            crate::guest_warn!("IDE: bus-master transfer of {len} bytes failed: {fault:?}");
        }
        let completion = self.drives[unit].dma_done(result);
        self.complete(unit, completion, ctx);
    }

    /// Ends the transfer in flight without completing its command; when this returns nothing of
    /// it touches guest memory or the image any more.
    pub(super) fn cancel_in_flight(&mut self) {
        if let Some(f) = self.in_flight.take() {
            f.transfer.cancel();
        }
    }

    /// Finishes the transfer in flight now (waiting for the worker if it is moving data) and
    /// completes its command, as if it had ended just before this call.
    pub(super) fn drain_in_flight(&mut self, ctx: &DmaContext<'_>) {
        if let Some(f) = self.in_flight.take() {
            if let Some(result) = f.transfer.drain() {
                self.finish_transfer(f.unit, f.exhausted, f.len, result, ctx);
            }
        }
    }

    /// Whether device `unit` has a transfer in flight.
    pub(super) fn in_flight_unit(&self) -> Option<usize> {
        self.in_flight.as_ref().map(|f| f.unit)
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
        if self.in_flight_unit() == Some(unit) {
            // DEVICE RESET of a PACKET device in the middle of its DMA.
            self.cancel_in_flight();
        }
        if command == cmd::EXECUTE_DEVICE_DIAGNOSTIC {
            // Section 8.11 / 9.12: both devices run diagnostics, device 0 reports.
            self.dma = None;
            self.cancel_in_flight();
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
            self.cancel_in_flight();
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
        match self.bus_master.write(offset, v) {
            EngineChange::Started => self.run_dma(ctx),
            // The guest stopped the engine while the worker may still be moving data: let the
            // data phase end (it cannot be recalled from the image or guest memory halfway) and
            // complete the command, as QEMU's ide_cancel_dma_sync does. After this write no
            // DMA of the old command touches guest memory, so the guest may reuse its buffers.
            EngineChange::Stopped => self.drain_in_flight(ctx),
            EngineChange::None => {}
        }
    }

    /// Power-on / machine reset.
    pub fn hard_reset(&mut self) {
        self.control = 0;
        self.dma = None;
        self.cancel_in_flight();
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
        let in_flight = self.in_flight_unit() == Some(unit);
        if in_flight {
            // Wait for the read of the old medium to end; its data never reaches the guest.
            self.cancel_in_flight();
        }
        if in_flight || self.dma.as_ref().is_some_and(|(u, _)| *u == unit) {
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

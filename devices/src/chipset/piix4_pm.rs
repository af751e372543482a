//! Intel 82371AB PIIX4 power management function (00:01.3, 8086:7113) and the ACPI fixed-hardware
//! blocks the guest's FADT points at.
//!
//! Three objects:
//! - [`Piix4Pm`], the PCI function (identity, PMBA/PMREGMISC and SMBus base as storage);
//! - [`PmIo`], the ACPI register blocks: PM1a event and control, the PM timer (PIIX4 datasheet
//!   section 11.7.3, ACPI 6.5 section 4.8.3) and GPE0 (ACPI section 4.8.4.1). It is a
//!   [`BusDevice`] the machine registers twice on the I/O bus: at [`PM_BASE`] for [`PM_IO_LEN`]
//!   bytes and at [`GPE0_BLK`] for [`GPE0_BLK_LEN`] bytes;
//! - [`ApmControl`], the APM control/status ports 0xb2/0xb3, whose ACPI enable/disable commands
//!   (ACPI section 4.8.2.5 "SCI_EN", FADT `SMI_CMD`) switch SCI_EN.
//!
//! The PM block stays at the fixed base 0xb000 whatever PMBA says: hvmloader's ACPI tables and ours
//! hard-code it, and both hvmloader and SeaBIOS program PMBA to that value anyway. On Xen the
//! hypervisor itself intercepts PM1a_EVT and the PM timer; what reaches us there is PM1a_CNT,
//! GPE0 and the APM ports.

use std::sync::{Arc, Mutex};

use crate::bus::BusDevice;
use crate::clock::Clock;
use crate::interrupt::InterruptLine;
use crate::pci::config::{PciIds, STATUS_DEVSEL_MEDIUM};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::pci::PciAddress;
use crate::vm_control::{VmControl, VmRequest};

/// Where the function lives: function 3 of the PIIX device at slot 1.
pub const PIIX4_PM_ADDRESS: PciAddress = crate::pc::layout::pci::PIIX4_PM;
pub const PIIX4_PM_VENDOR_ID: u16 = 0x8086;
pub const PIIX4_PM_DEVICE_ID: u16 = 0x7113;
pub const PIIX4_PM_REVISION: u8 = 0x03;

// ---- the fixed I/O layout shared with the ACPI table writers ----

/// Base of the PM register block (PM1a_EVT_BLK).
pub const PM_BASE: u16 = crate::pc::layout::port::PM.0;
/// Length of the PIIX4 PM register block (PIIX4 section 11.7.3: 64 bytes).
pub const PM_IO_LEN: u16 = crate::pc::layout::port::PM.1;
/// PM1a_EVT_BLK: PM1_STS (2 bytes) then PM1_EN (2 bytes).
pub const PM1A_EVT_BLK: u16 = PM_BASE;
pub const PM1_EVT_LEN: u8 = 4;
/// Offset of PM1a_CNT in the block, and its port.
pub const PM1A_CNT_OFFSET: u16 = 0x04;
pub const PM1A_CNT_BLK: u16 = PM_BASE + PM1A_CNT_OFFSET;
pub const PM1_CNT_LEN: u8 = 2;
/// Offset of the PM timer in the block, and its port.
pub const PM_TMR_OFFSET: u16 = 0x08;
pub const PM_TMR_BLK: u16 = PM_BASE + PM_TMR_OFFSET;
pub const PM_TMR_LEN: u8 = 4;
/// GPE0 block: status (2 bytes) then enable (2 bytes), where hvmloader's DSDT expects it.
pub const GPE0_BLK: u16 = crate::pc::layout::port::GPE0.0;
pub const GPE0_BLK_LEN: u8 = crate::pc::layout::port::GPE0.1 as u8;
/// The SCI is ISA IRQ 9, level-triggered, active high (as hvmloader's and our MADT/DSDT say).
pub const SCI_IRQ: u8 = crate::pc::layout::irq::SCI;
/// FADT SMI_CMD: the APM control port.
pub const SMI_CMD_PORT: u16 = crate::pc::layout::port::SMI_CMD.0;
/// The APM status port, next to SMI_CMD.
pub const APM_STATUS_PORT: u16 = 0xb3;
/// FADT ACPI_ENABLE / ACPI_DISABLE: the values written to SMI_CMD.
pub const ACPI_ENABLE: u8 = 0xf1;
pub const ACPI_DISABLE: u8 = 0xf0;
/// SLP_TYP for S5 (soft off) in our DSDT and hvmloader's, as in QEMU.
pub const S5_SLP_TYP: u8 = 0;
/// PM timer frequency (ACPI section 4.8.3.3).
pub const PM_TIMER_HZ: u64 = 3_579_545;

// PM1_STS / PM1_EN bits (PIIX4 section 11.7.3.1-2, ACPI tables 4.16-4.17).
pub const PM1_TMR_STS: u16 = 1 << 0;
pub const PM1_BM_STS: u16 = 1 << 4;
pub const PM1_GBL_STS: u16 = 1 << 5;
pub const PM1_PWRBTN_STS: u16 = 1 << 8;
pub const PM1_RTC_STS: u16 = 1 << 10;
pub const PM1_PWRBTNOR_STS: u16 = 1 << 11;
pub const PM1_WAK_STS: u16 = 1 << 15;
const PM1_STS_BITS: u16 =
    PM1_TMR_STS | PM1_BM_STS | PM1_GBL_STS | PM1_PWRBTN_STS | PM1_RTC_STS | PM1_PWRBTNOR_STS | PM1_WAK_STS;
pub const PM1_TMR_EN: u16 = 1 << 0;
pub const PM1_GBL_EN: u16 = 1 << 5;
pub const PM1_PWRBTN_EN: u16 = 1 << 8;
pub const PM1_RTC_EN: u16 = 1 << 10;
const PM1_EN_BITS: u16 = PM1_TMR_EN | PM1_GBL_EN | PM1_PWRBTN_EN | PM1_RTC_EN;

// PM1_CNT bits (PIIX4 section 11.7.3.3 PMCNTRL, ACPI table 4.18).
pub const PM1_CNT_SCI_EN: u16 = 1 << 0;
const PM1_CNT_BM_RLD: u16 = 1 << 1;
/// GBL_RLS is write-only: it would raise an SMI to the BIOS; there is no SMM here.
const PM1_CNT_GBL_RLS: u16 = 1 << 2;
const PM1_CNT_SLP_TYP_SHIFT: u16 = 10;
const PM1_CNT_SLP_TYP: u16 = 0x7 << PM1_CNT_SLP_TYP_SHIFT;
/// SLP_EN is write-only and reads zero.
pub const PM1_CNT_SLP_EN: u16 = 1 << 13;
const PM1_CNT_STORED: u16 = PM1_CNT_SCI_EN | PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP;

/// The PM timer counts 24 bits (FADT TMR_VAL_EXT clear); TMR_STS is set when bit 23 toggles.
const PM_TIMER_BITS: u32 = 24;
const PM_TIMER_MASK: u32 = (1 << PM_TIMER_BITS) - 1;
const PM_TIMER_STATUS_SHIFT: u32 = PM_TIMER_BITS - 1;

/// Offsets of registers above the ACPI ones in the block that P_LVL2/P_LVL3 (0x14, 0x15) occupy:
/// reading them would enter C2/C3 on real hardware; here they read zero.
const P_LVL2: u16 = 0x14;
const P_LVL3: u16 = 0x15;
/// First byte after PM_TMR: GPSTS, GPEN, PCNTRL, GLBSTS, DEVSTS, GLBEN, GLBCTL, DEVCTL, GPIREG,
/// GPOREG (PIIX4 section 11.7.3.5-17), kept as storage.
const PM_STORAGE_START: u16 = 0x0c;

/// The register `[reg, reg + width)` as touched by an access of `data` at `offset`: the value
/// written and the mask of bytes written.
fn register_write(offset: u16, data: &[u8], reg: u16, width: u16) -> Option<(u16, u16)> {
    let (mut value, mut mask) = (0u16, 0u16);
    for (i, &b) in data.iter().enumerate() {
        let at = offset as usize + i;
        if at >= reg as usize && at < (reg + width) as usize {
            let shift = (at - reg as usize) * 8;
            value |= (b as u16) << shift;
            mask |= 0xff << shift;
        }
    }
    (mask != 0).then_some((value, mask))
}

/// The ACPI fixed-hardware registers: PM1a_EVT, PM1a_CNT, PM_TMR and GPE0.
pub struct PmIo {
    pm1_sts: u16,
    pm1_en: u16,
    pm1_cnt: u16,
    gpe0_sts: u16,
    gpe0_en: u16,
    storage: [u8; (PM_IO_LEN - PM_STORAGE_START) as usize],
    /// Clock reading when the timer was at zero.
    timer_origin_ns: u64,
    /// Count of bit-23 toggles already reflected in TMR_STS.
    timer_periods_seen: u64,
    sci_level: bool,
    clock: Arc<dyn Clock>,
    sci: Arc<dyn InterruptLine>,
    vm: Arc<dyn VmControl>,
}

impl std::fmt::Debug for PmIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PmIo")
            .field("pm1_sts", &self.pm1_sts)
            .field("pm1_en", &self.pm1_en)
            .field("pm1_cnt", &self.pm1_cnt)
            .field("gpe0_sts", &self.gpe0_sts)
            .field("gpe0_en", &self.gpe0_en)
            .field("sci_level", &self.sci_level)
            .finish()
    }
}

impl PmIo {
    /// The registers at reset. The SCI goes to `sci` (ISA IRQ [`SCI_IRQ`], level), power-off
    /// requests to `vm`, and the PM timer counts from `clock`.
    pub fn new(sci: Arc<dyn InterruptLine>, vm: Arc<dyn VmControl>, clock: Arc<dyn Clock>) -> Self {
        let timer_origin_ns = clock.monotonic_ns();
        PmIo {
            pm1_sts: 0,
            pm1_en: 0,
            pm1_cnt: 0,
            gpe0_sts: 0,
            gpe0_en: 0,
            storage: [0; (PM_IO_LEN - PM_STORAGE_START) as usize],
            timer_origin_ns,
            timer_periods_seen: 0,
            sci_level: false,
            clock,
            sci,
            vm,
        }
    }

    /// PM timer ticks since reset.
    fn timer_ticks(&self) -> u64 {
        // Wrapping: a restored timer's origin may lie before this clock's zero.
        let ns = self.clock.monotonic_ns().wrapping_sub(self.timer_origin_ns);
        (ns as u128 * PM_TIMER_HZ as u128 / 1_000_000_000) as u64
    }

    /// The 24-bit PM timer value (PM_TMR, read-only).
    pub fn pm_timer(&self) -> u32 {
        self.timer_ticks() as u32 & PM_TIMER_MASK
    }

    /// Nanoseconds until the timer's bit 23 next toggles (sets TMR_STS). A machine that wants the
    /// timer-carry SCI (PM1_EN.TMR_EN) calls [`PmIo::poll`] then.
    pub fn ns_until_timer_carry(&self) -> u64 {
        let period = 1u64 << PM_TIMER_STATUS_SHIFT;
        let ticks = self.timer_ticks();
        let left = period - ticks % period;
        (left as u128 * 1_000_000_000).div_ceil(PM_TIMER_HZ as u128) as u64
    }

    /// Brings TMR_STS up to date with the clock and the SCI with the registers. Accesses do this
    /// themselves; a machine calls it from a timer to deliver the timer-carry SCI on time.
    pub fn poll(&mut self) {
        let periods = self.timer_ticks() >> PM_TIMER_STATUS_SHIFT;
        if periods != self.timer_periods_seen {
            self.timer_periods_seen = periods;
            self.pm1_sts |= PM1_TMR_STS;
        }
        self.update_sci();
    }

    /// SCI_EN: the OS owns the ACPI events (ACPI section 4.8.2.5).
    pub fn sci_enabled(&self) -> bool {
        self.pm1_cnt & PM1_CNT_SCI_EN != 0
    }

    /// What the APM ACPI enable/disable commands do (the SMI handler on real boards).
    pub fn set_sci_enabled(&mut self, enabled: bool) {
        if enabled {
            self.pm1_cnt |= PM1_CNT_SCI_EN;
        } else {
            self.pm1_cnt &= !PM1_CNT_SCI_EN;
        }
        self.update_sci();
    }

    /// The host pressed the power button (QMP `system_powerdown`): PWRBTN_STS, then an SCI if the
    /// OS enabled it (ACPI section 4.8.2.2.1).
    pub fn press_power_button(&mut self) {
        self.pm1_sts |= PM1_PWRBTN_STS;
        self.update_sci();
    }

    /// Sets GPE0 status bit `bit` (0-15), e.g. for PCI or CPU hotplug; an SCI follows if the OS
    /// enabled that GPE.
    pub fn raise_gpe(&mut self, bit: u8) {
        if bit < 16 {
            self.gpe0_sts |= 1 << bit;
            self.update_sci();
        }
    }

    pub fn pm1_status(&self) -> u16 {
        self.pm1_sts
    }
    pub fn gpe0_status(&self) -> u16 {
        self.gpe0_sts
    }

    /// The SCI is level-triggered and asserted while any enabled event's status bit is set
    /// (ACPI section 4.8.2.1). Like QEMU, the level does not depend on SCI_EN: with SCI_EN clear
    /// these events would go to SMM, which this machine does not have.
    fn update_sci(&mut self) {
        let level = (self.pm1_sts & self.pm1_en & PM1_EN_BITS) != 0 || (self.gpe0_sts & self.gpe0_en) != 0;
        if level != self.sci_level {
            self.sci_level = level;
            self.sci.set_level(level);
        }
    }

    fn pm_byte(&self, offset: u16, timer: u32) -> u8 {
        let byte = |v: u32, at: u16| (v >> (8 * at)) as u8;
        match offset {
            0..=1 => byte(self.pm1_sts as u32, offset),
            2..=3 => byte(self.pm1_en as u32, offset - 2),
            4..=5 => byte(self.pm1_cnt as u32, offset - 4),
            8..=11 => byte(timer, offset - 8),
            P_LVL2 | P_LVL3 => 0,
            PM_STORAGE_START.. => self.storage.get((offset - PM_STORAGE_START) as usize).copied().unwrap_or(0xff),
            _ => 0,
        }
    }

    fn pm_read(&mut self, offset: u16, data: &mut [u8]) {
        self.poll();
        let timer = self.pm_timer();
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.pm_byte(offset + i as u16, timer);
        }
    }

    fn pm_write(&mut self, offset: u16, data: &[u8]) {
        self.poll();
        // PM1_STS: write 1 to clear (ACPI section 4.8.3.1.1).
        if let Some((v, m)) = register_write(offset, data, 0, 2) {
            self.pm1_sts &= !(v & m & PM1_STS_BITS);
        }
        if let Some((v, m)) = register_write(offset, data, 2, 2) {
            self.pm1_en = (self.pm1_en & !m) | (v & m & PM1_EN_BITS);
        }
        if let Some((v, m)) = register_write(offset, data, PM1A_CNT_OFFSET, 2) {
            let m_stored = m & PM1_CNT_STORED;
            self.pm1_cnt = (self.pm1_cnt & !m_stored) | (v & m_stored);
            if v & m & PM1_CNT_GBL_RLS != 0 {
                crate::guest_warn!("PIIX4 PM: GBL_RLS written; no BIOS/SMM to notify");
            }
            if v & m & PM1_CNT_SLP_EN != 0 {
                self.sleep(((self.pm1_cnt & PM1_CNT_SLP_TYP) >> PM1_CNT_SLP_TYP_SHIFT) as u8);
            }
        }
        for (i, &b) in data.iter().enumerate() {
            let at = offset + i as u16;
            if at >= PM_STORAGE_START && at != P_LVL2 && at != P_LVL3 {
                if let Some(s) = self.storage.get_mut((at - PM_STORAGE_START) as usize) {
                    *s = b;
                }
            }
        }
        self.update_sci();
    }

    /// SLP_EN with SLP_TYP: enter the sleep state the DSDT's \_Sx package maps to that type
    /// (ACPI section 4.8.3.2.1). Only S5 exists here.
    fn sleep(&mut self, slp_typ: u8) {
        if slp_typ == S5_SLP_TYP {
            self.vm.request(VmRequest::PowerOff);
        } else {
            crate::guest_warn!("PIIX4 PM: sleep type {slp_typ} requested; only S5 (type {S5_SLP_TYP}) is supported");
        }
    }

    fn gpe_read(&mut self, offset: u16, data: &mut [u8]) {
        self.poll();
        let regs = (self.gpe0_sts as u32) | (self.gpe0_en as u32) << 16;
        for (i, b) in data.iter_mut().enumerate() {
            *b = (regs >> (8 * (offset as usize + i))) as u8;
        }
    }

    /// GPE0_STS is write-1-to-clear, GPE0_EN read/write (ACPI section 4.8.4.1).
    fn gpe_write(&mut self, offset: u16, data: &[u8]) {
        if let Some((v, m)) = register_write(offset, data, 0, 2) {
            self.gpe0_sts &= !(v & m);
        }
        if let Some((v, m)) = register_write(offset, data, 2, 2) {
            self.gpe0_en = (self.gpe0_en & !m) | (v & m);
        }
        self.update_sci();
    }

    /// Which block and offset an access of `len` bytes at port `addr` is, if it lies entirely in one.
    fn locate(addr: u64, len: usize) -> Option<(bool, u16)> {
        let end = addr.checked_add(len as u64)?;
        if addr >= PM_BASE as u64 && end <= (PM_BASE + PM_IO_LEN) as u64 {
            Some((true, (addr - PM_BASE as u64) as u16))
        } else if addr >= GPE0_BLK as u64 && end <= GPE0_BLK as u64 + GPE0_BLK_LEN as u64 {
            Some((false, (addr - GPE0_BLK as u64) as u16))
        } else {
            None
        }
    }
}

impl BusDevice for PmIo {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        match Self::locate(addr, data.len()) {
            Some((true, off)) => self.pm_read(off, data),
            Some((false, off)) => self.gpe_read(off, data),
            None => data.fill(0xff),
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        match Self::locate(addr, data.len()) {
            Some((true, off)) => self.pm_write(off, data),
            Some((false, off)) => self.gpe_write(off, data),
            None => {}
        }
    }
}

/// APM control (0xb2) and status (0xb3) ports. Firmware and the OS write [`ACPI_ENABLE`] to the
/// control port (FADT SMI_CMD) to hand ACPI events to the OS; on a real board that raises an SMI
/// whose handler sets SCI_EN. hvmloader BUGs if SCI_EN does not follow. Register it at
/// [`SMI_CMD_PORT`] for 2 bytes.
pub struct ApmControl {
    control: u8,
    status: u8,
    pm: Arc<Mutex<PmIo>>,
}

impl std::fmt::Debug for ApmControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApmControl").field("control", &self.control).field("status", &self.status).finish()
    }
}

impl ApmControl {
    pub fn new(pm: Arc<Mutex<PmIo>>) -> Self {
        ApmControl { control: 0, status: 0, pm }
    }

    fn port_byte(&self, port: u64) -> u8 {
        if port == SMI_CMD_PORT as u64 {
            self.control
        } else if port == APM_STATUS_PORT as u64 {
            self.status
        } else {
            0xff
        }
    }
}

impl BusDevice for ApmControl {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b = self.port_byte(addr.saturating_add(i as u64));
        }
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let port = addr.saturating_add(i as u64);
            if port == SMI_CMD_PORT as u64 {
                self.control = b;
                match b {
                    ACPI_ENABLE => self.pm.lock().unwrap().set_sci_enabled(true),
                    ACPI_DISABLE => self.pm.lock().unwrap().set_sci_enabled(false),
                    _ => {}
                }
            } else if port == APM_STATUS_PORT as u64 {
                self.status = b;
            }
        }
    }
}

/// Builds the PCI function and its PM register block, shared: add the first at
/// [`PIIX4_PM_ADDRESS`], register the second on the I/O bus at [`PM_BASE`] ([`PM_IO_LEN`] bytes)
/// and at [`GPE0_BLK`] ([`GPE0_BLK_LEN`] bytes), and hand it to [`ApmControl::new`].
pub fn new(
    sci: Arc<dyn InterruptLine>,
    vm: Arc<dyn VmControl>,
    clock: Arc<dyn Clock>,
) -> (Arc<Mutex<Piix4Pm>>, Arc<Mutex<PmIo>>) {
    let function = Piix4Pm::new(sci, vm, clock);
    let pm = function.pm_io();
    (Arc::new(Mutex::new(function)), pm)
}

// ---- PCI configuration registers of function 3 (PIIX4 section 11.6) ----

/// PMBA: PM I/O base, bits 15:6; bit 0 reads 1 (I/O space indicator).
pub const PMBA: u8 = 0x40;
/// PMREGMISC bit 0: PM I/O space enable.
pub const PMREGMISC: u8 = 0x80;
/// SMBBA: SMBus I/O base, bits 15:4; bit 0 reads 1.
pub const SMBBA: u8 = 0x90;
/// SMBHSTCFG: SMBus host enable (bit 0) and interrupt select (bits 3:1).
pub const SMBHSTCFG: u8 = 0xd2;

/// The PIIX4 power management PCI function.
pub struct Piix4Pm {
    function: PciFunction,
    pm: Arc<Mutex<PmIo>>,
    /// Where PMBA pointed after the last configuration write (to warn once per change).
    pm_io_base: Option<u16>,
}

impl std::fmt::Debug for Piix4Pm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piix4Pm").field("config", self.function.config()).finish()
    }
}

impl Piix4Pm {
    /// The function, and the PM register block it owns; get the block with [`Piix4Pm::pm_io`] to
    /// register it on the I/O bus and to give it to [`ApmControl::new`].
    pub fn new(sci: Arc<dyn InterruptLine>, vm: Arc<dyn VmControl>, clock: Arc<dyn Clock>) -> Self {
        let mut function = PciFunction::new(
            PciIds {
                vendor_id: PIIX4_PM_VENDOR_ID,
                device_id: PIIX4_PM_DEVICE_ID,
                revision_id: PIIX4_PM_REVISION,
                class: 0x06,    // bridge
                subclass: 0x80, // other bridge
                ..Default::default()
            },
            // The pin register reads INTA# as on QEMU; the SCI itself is ISA IRQ 9.
            Some(crate::interrupt::IntxPin::IntA),
            PciResources::none(),
        );
        let config = function.config_mut();
        config.set_status_bits(STATUS_DEVSEL_MEDIUM);
        config.set_u32(PMBA, 1);
        config.set_writable_u32(PMBA, 0xffc0);
        config.set_writable_u8(PMREGMISC, 0x01);
        config.set_u32(SMBBA, 1);
        config.set_writable_u32(SMBBA, 0xfff0);
        config.set_writable_u8(SMBHSTCFG, 0x0f);
        Piix4Pm { function, pm: Arc::new(Mutex::new(PmIo::new(sci, vm, clock))), pm_io_base: None }
    }

    /// The ACPI register block, shared with this function.
    pub fn pm_io(&self) -> Arc<Mutex<PmIo>> {
        self.pm.clone()
    }

    /// Where the guest asked the PM block to decode (PMBA, if PMREGMISC enables it). The block
    /// actually stays at [`PM_BASE`].
    pub fn pm_io_base(&self) -> Option<u16> {
        let config = self.function.config();
        (config.read_u8(PMREGMISC) & 1 != 0).then(|| (config.read_u32(PMBA) & 0xffc0) as u16)
    }
}

impl PciFunctionDevice for Piix4Pm {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        let after = self.pm_io_base();
        if after != std::mem::replace(&mut self.pm_io_base, after) {
            if let Some(base) = after.filter(|&b| b != PM_BASE) {
                crate::guest_warn!("PIIX4 PM: PMBA set to {base:#x}; the PM block stays at {PM_BASE:#x}");
            }
        }
    }
}

/// PM timer ticks as nanoseconds, if that fits.
fn ticks_to_ns(ticks: u64) -> Option<u64> {
    u64::try_from(ticks as u128 * 1_000_000_000 / PM_TIMER_HZ as u128).ok()
}

impl crate::snapshot::Snapshot for PmIo {
    const ID: &'static str = "acpi-pm";
    const VERSION: u16 = 1;

    /// PM1 status/enable/control, GPE0 status/enable, the storage registers and the PM timer's
    /// count (QEMU `vmstate_acpi`: pm1.evt, pm1.cnt, tmr, gpe). The timer is saved as its tick
    /// count so it continues from there on the restoring host's clock.
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u16(self.pm1_sts);
        w.u16(self.pm1_en);
        w.u16(self.pm1_cnt);
        w.u16(self.gpe0_sts);
        w.u16(self.gpe0_en);
        w.bytes(&self.storage);
        w.u64(self.timer_ticks());
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let bits = |r: &mut crate::snapshot::StateReader<'_>,
                    field: &str,
                    allowed: u16|
         -> Result<u16, crate::snapshot::StateError> {
            let v = r.u16(field)?;
            if v & !allowed != 0 {
                return Err(r.invalid(field, format!("{v:#06x} has bits outside {allowed:#06x}")));
            }
            Ok(v)
        };
        let pm1_sts = bits(r, "pm1_sts", PM1_STS_BITS)?;
        let pm1_en = bits(r, "pm1_en", PM1_EN_BITS)?;
        let pm1_cnt = bits(r, "pm1_cnt", PM1_CNT_STORED)?;
        let gpe0_sts = r.u16("gpe0_sts")?;
        let gpe0_en = r.u16("gpe0_en")?;
        let storage = r.array("storage")?;
        let ticks = r.u64("timer_ticks")?;
        let Some(elapsed_ns) = ticks_to_ns(ticks) else {
            return Err(r.invalid("timer_ticks", format!("{ticks} ticks is beyond any uptime")));
        };
        r.finish()?;
        self.pm1_sts = pm1_sts;
        self.pm1_en = pm1_en;
        self.pm1_cnt = pm1_cnt;
        self.gpe0_sts = gpe0_sts;
        self.gpe0_en = gpe0_en;
        self.storage = storage;
        self.timer_origin_ns = self.clock.monotonic_ns().wrapping_sub(elapsed_ns);
        // TMR_STS for periods before the save is in pm1_sts already.
        self.timer_periods_seen = self.timer_ticks() >> PM_TIMER_STATUS_SHIFT;
        // Drive the SCI to what the restored registers say.
        self.sci_level = (self.pm1_sts & self.pm1_en & PM1_EN_BITS) != 0 || (self.gpe0_sts & self.gpe0_en) != 0;
        self.sci.set_level(self.sci_level);
        Ok(())
    }
}

impl crate::snapshot::Snapshot for ApmControl {
    const ID: &'static str = "apm";
    const VERSION: u16 = 1;

    /// The APM control and status bytes (QEMU `vmstate_apm`).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u8(self.control);
        w.u8(self.status);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let control = r.u8("control")?;
        let status = r.u8("status")?;
        r.finish()?;
        self.control = control;
        self.status = status;
        Ok(())
    }
}

impl crate::snapshot::Snapshot for Piix4Pm {
    const ID: &'static str = "piix4-pm";
    const VERSION: u16 = 1;

    /// Configuration space (PMBA, PMREGMISC, SMBus registers). The ACPI register block is its own
    /// section ([`PmIo`]).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.function.config().save_state(w);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let state = self.function.config().load_state(r)?;
        r.finish()?;
        self.function.config_mut().apply_state(state);
        self.pm_io_base = self.pm_io_base();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::interrupt::RecordingLine;
    use crate::pci::PciDevice;
    use crate::vm_control::RecordingVmControl;

    struct Rig {
        clock: Arc<ManualClock>,
        sci: Arc<RecordingLine>,
        vm: Arc<RecordingVmControl>,
        function: Piix4Pm,
        pm: Arc<Mutex<PmIo>>,
        apm: ApmControl,
    }

    fn rig() -> Rig {
        let clock = Arc::new(ManualClock::new(0));
        let sci = Arc::new(RecordingLine::default());
        let vm = Arc::new(RecordingVmControl::default());
        let function = Piix4Pm::new(sci.clone(), vm.clone(), clock.clone());
        let pm = function.pm_io();
        let apm = ApmControl::new(pm.clone());
        Rig { clock, sci, vm, function, pm, apm }
    }

    impl Rig {
        fn inw(&self, port: u16) -> u16 {
            let mut d = [0u8; 2];
            self.pm.lock().unwrap().read(port as u64, &mut d);
            u16::from_le_bytes(d)
        }
        fn inl(&self, port: u16) -> u32 {
            let mut d = [0u8; 4];
            self.pm.lock().unwrap().read(port as u64, &mut d);
            u32::from_le_bytes(d)
        }
        fn outw(&self, port: u16, v: u16) {
            self.pm.lock().unwrap().write(port as u64, &v.to_le_bytes());
        }
    }

    #[test]
    fn pci_function_identity_and_registers() {
        let mut r = rig();
        let mut d = [0u8; 4];
        r.function.config_read(0, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x7113_8086);
        r.function.config_read(8, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0x0680_0003);
        r.function.config_read(0x3c, &mut d);
        assert_eq!(d[1], 1, "INTA");
        // hvmloader: PMBA = 0xb000 | 1, PMREGMISC = 1, IRQ 9.
        assert_eq!(r.function.pm_io_base(), None);
        r.function.config_write(0x40, &0xffff_ffffu32.to_le_bytes());
        r.function.config_read(0x40, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0xffc1, "64-byte aligned, bit 0 reads 1");
        r.function.config_write(0x40, &(PM_BASE as u32).to_le_bytes());
        r.function.config_write(0x80, &[0xff]);
        r.function.config_read(0x80, &mut d);
        assert_eq!(d[0], 1);
        assert_eq!(r.function.pm_io_base(), Some(PM_BASE));
        r.function.config_write(0x90, &0xffff_ffffu32.to_le_bytes());
        r.function.config_read(0x90, &mut d);
        assert_eq!(u32::from_le_bytes(d), 0xfff1);
    }

    #[test]
    fn slp_en_with_s5_type_requests_power_off() {
        let r = rig();
        // SLP_TYP = 5 (not S5 here) with SLP_EN: nothing happens.
        r.outw(PM1A_CNT_BLK, 5 << 10 | PM1_CNT_SLP_EN);
        assert!(r.vm.take().is_empty());
        // Writing SLP_TYP = 0 without SLP_EN does nothing either.
        r.outw(PM1A_CNT_BLK, PM1_CNT_SCI_EN);
        assert!(r.vm.take().is_empty());
        // SLP_EN reads back zero, SCI_EN sticks.
        assert_eq!(r.inw(PM1A_CNT_BLK), PM1_CNT_SCI_EN);
        r.outw(PM1A_CNT_BLK, PM1_CNT_SCI_EN | PM1_CNT_SLP_EN);
        assert_eq!(r.vm.take(), vec![VmRequest::PowerOff]);
        // A byte write of the high half (SLP_TYP and SLP_EN share it) works too.
        r.pm.lock().unwrap().write(PM1A_CNT_BLK as u64 + 1, &[(PM1_CNT_SLP_EN >> 8) as u8]);
        assert_eq!(r.vm.take(), vec![VmRequest::PowerOff]);
    }

    #[test]
    fn sci_follows_pm1_status_and_enable() {
        let r = rig();
        r.pm.lock().unwrap().press_power_button();
        assert!(!r.sci.level(), "PWRBTN_EN clear");
        assert_eq!(r.inw(PM1A_EVT_BLK) & PM1_PWRBTN_STS, PM1_PWRBTN_STS);
        r.outw(PM1A_EVT_BLK + 2, PM1_PWRBTN_EN);
        assert!(r.sci.level());
        assert_eq!(r.inw(PM1A_EVT_BLK + 2), PM1_PWRBTN_EN);
        // Writing 0 to the status changes nothing; writing 1 clears and drops the SCI.
        r.outw(PM1A_EVT_BLK, 0);
        assert!(r.sci.level());
        r.outw(PM1A_EVT_BLK, PM1_PWRBTN_STS);
        assert!(!r.sci.level());
        assert_eq!(r.inw(PM1A_EVT_BLK) & PM1_PWRBTN_STS, 0);
        // Status set while enabled asserts; disabling the enable deasserts.
        r.pm.lock().unwrap().press_power_button();
        assert!(r.sci.level());
        r.outw(PM1A_EVT_BLK + 2, 0);
        assert!(!r.sci.level());
        assert_eq!(r.sci.rising_edges(), 2);
    }

    #[test]
    fn gpe0_block_is_status_then_enable() {
        let r = rig();
        r.pm.lock().unwrap().raise_gpe(1);
        assert!(!r.sci.level());
        assert_eq!(r.inl(GPE0_BLK), 0x0000_0002);
        r.outw(GPE0_BLK + 2, 0x0006);
        assert!(r.sci.level());
        assert_eq!(r.inl(GPE0_BLK), 0x0006_0002);
        r.outw(GPE0_BLK, 0x0002);
        assert!(!r.sci.level());
        assert_eq!(r.inl(GPE0_BLK), 0x0006_0000);
    }

    #[test]
    fn acpi_enable_command_on_port_b2_sets_sci_en() {
        let mut r = rig();
        assert_eq!(r.inw(PM1A_CNT_BLK) & PM1_CNT_SCI_EN, 0);
        r.apm.write(SMI_CMD_PORT as u64, &[ACPI_ENABLE]);
        assert_eq!(r.inw(PM1A_CNT_BLK) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN);
        let mut b = [0u8; 2];
        r.apm.read(SMI_CMD_PORT as u64, &mut b);
        assert_eq!(b, [ACPI_ENABLE, 0]);
        r.apm.write(APM_STATUS_PORT as u64, &[0x5a]);
        r.apm.write(SMI_CMD_PORT as u64, &[0x12]);
        assert_eq!(r.inw(PM1A_CNT_BLK) & PM1_CNT_SCI_EN, PM1_CNT_SCI_EN, "other commands leave it alone");
        r.apm.read(SMI_CMD_PORT as u64, &mut b);
        assert_eq!(b, [0x12, 0x5a]);
        r.apm.write(SMI_CMD_PORT as u64, &[ACPI_DISABLE]);
        assert_eq!(r.inw(PM1A_CNT_BLK) & PM1_CNT_SCI_EN, 0);
    }

    #[test]
    fn pm_timer_counts_at_3_58_mhz_and_wraps_at_24_bits() {
        let r = rig();
        assert_eq!(r.inl(PM_TMR_BLK), 0);
        r.clock.advance_ns(1_000_000_000);
        assert_eq!(r.inl(PM_TMR_BLK), 3_579_545);
        // The guest cannot write it.
        r.pm.lock().unwrap().write(PM_TMR_BLK as u64, &0u32.to_le_bytes());
        assert_eq!(r.inl(PM_TMR_BLK), 3_579_545);
        // 5 s = 17_897_725 ticks, past 2^24.
        r.clock.advance_ns(4_000_000_000);
        assert_eq!(r.inl(PM_TMR_BLK), 17_897_725 & 0xff_ffff);
    }

    #[test]
    fn timer_carry_sets_tmr_sts_and_raises_the_sci_when_enabled() {
        let r = rig();
        r.outw(PM1A_EVT_BLK + 2, PM1_TMR_EN);
        assert_eq!(r.inw(PM1A_EVT_BLK) & PM1_TMR_STS, 0);
        let wait = r.pm.lock().unwrap().ns_until_timer_carry();
        // 2^23 ticks at 3.579545 MHz is about 2.34 s.
        assert!((2_343_000_000..2_344_000_000).contains(&wait), "{wait}");
        r.clock.advance_ns(wait - 1_000);
        r.pm.lock().unwrap().poll();
        assert!(!r.sci.level());
        r.clock.advance_ns(1_000);
        r.pm.lock().unwrap().poll();
        assert!(r.sci.level());
        assert_eq!(r.inw(PM1A_EVT_BLK) & PM1_TMR_STS, PM1_TMR_STS);
        r.outw(PM1A_EVT_BLK, PM1_TMR_STS);
        assert!(!r.sci.level());
    }

    #[test]
    fn accesses_outside_the_blocks_read_all_ones() {
        let r = rig();
        let mut d = [0u8; 4];
        r.pm.lock().unwrap().read(PM_BASE as u64 + 0x3e, &mut d);
        assert_eq!(d, [0xff; 4]);
        r.pm.lock().unwrap().read(u64::MAX - 1, &mut d);
        assert_eq!(d, [0xff; 4]);
        r.pm.lock().unwrap().write(u64::MAX - 1, &[1, 2, 3, 4]);
        // Storage registers above the timer keep what was written; P_LVL2/3 read zero.
        r.pm.lock().unwrap().write(PM_BASE as u64 + 0x14, &[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(r.inl(PM_BASE + 0x14), 0xddcc_0000);
    }
}

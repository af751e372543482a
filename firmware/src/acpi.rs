//! ACPI tables for a direct (firmware-less) boot of our i440FX/PIIX4 machine: RSDP, XSDT, FADT,
//! FACS, MADT and a DSDT describing the PCI root bridge, its interrupt routing and the ISA
//! devices. Table layouts follow ACPI 6.5 chapter 5.2.
//!
//! The machine is a legacy PC, not a hardware-reduced one: PM1 event/control, the PM timer and
//! GPE0 are PIIX4 I/O ports, SCI is an ISA interrupt, and ACPI mode is entered through SMI_CMD.

use acpi_tables::aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace as GasSpace, GAS};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;

use crate::layout;
use crate::{write_guest, Error, GuestMem};

const OEM_ID: [u8; 6] = *b"RUSTDM";
const OEM_REVISION: u32 = 1;

/// What the ACPI tables describe. Defaults match the PIIX4 power management function and the
/// PIIX3 PCI interrupt router as our device model emulates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcpiConfig {
    /// Number of vCPUs; CPU `i` has local APIC id `i`. The IO-APIC takes id `cpus`.
    pub cpus: u8,
    /// PIIX4 PM I/O base: PM1a_EVT at +0 (4 bytes), PM1a_CNT at +4 (2), PM_TMR at +8 (4).
    pub pm_base: u16,
    /// ISA IRQ of the SCI.
    pub sci_irq: u8,
    /// SMI command port and the values that switch ACPI mode on and off.
    pub smi_cmd: u16,
    pub acpi_enable: u8,
    pub acpi_disable: u8,
    /// GPE0 block: status bytes then enable bytes, `gpe0_len` bytes in total.
    pub gpe0_base: u16,
    pub gpe0_len: u8,
    /// Reset register (an I/O port) and the value that resets the machine.
    pub reset_port: u16,
    pub reset_value: u8,
    /// PCI MMIO window for BARs: `pci_mmio_start..pci_mmio_end` (end exclusive).
    pub pci_mmio_start: u64,
    pub pci_mmio_end: u64,
    /// The IRQs PIRQA..PIRQD are routed to (PIIX3 PIRQRC registers).
    pub pirq_irqs: [u8; 4],
}

impl Default for AcpiConfig {
    fn default() -> Self {
        // The board's fixed resources, from the one table the devices are built from.
        use devices::chipset::piix4_pm;
        use devices::pc::layout as pc;
        AcpiConfig {
            cpus: 1,
            pm_base: pc::port::PM.0,
            sci_irq: pc::irq::SCI,
            smi_cmd: pc::port::SMI_CMD.0,
            acpi_enable: piix4_pm::ACPI_ENABLE,
            acpi_disable: piix4_pm::ACPI_DISABLE,
            gpe0_base: pc::port::GPE0.0,
            gpe0_len: pc::port::GPE0.1 as u8,
            reset_port: pc::port::RESET_CONTROL.0,
            reset_value: pc::RESET_VALUE,
            pci_mmio_start: layout::PCI_MMIO_START,
            pci_mmio_end: layout::PCI_MMIO_END,
            pirq_irqs: pc::PIRQ_ROUTES,
        }
    }
}

impl AcpiConfig {
    fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::AcpiConfig(msg));
        if self.cpus == 0 || self.cpus > 254 {
            // APIC ids are 8 bits, 0xff is broadcast, and the IO-APIC takes id `cpus`.
            return bad(format!("{} vCPUs; 1 to 254 are supported", self.cpus));
        }
        if self.pci_mmio_start >= self.pci_mmio_end {
            return bad(format!("PCI MMIO window {:#x}..{:#x} is empty", self.pci_mmio_start, self.pci_mmio_end));
        }
        if self.sci_irq >= 16 || self.pirq_irqs.iter().any(|&irq| irq >= 16 || irq == 0) {
            return bad(format!("SCI IRQ {} and PCI IRQs {:?} must be ISA IRQs 1-15", self.sci_irq, self.pirq_irqs));
        }
        if self.gpe0_len == 0 || self.gpe0_len & 1 != 0 {
            return bad(format!("GPE0 block length {} must be even and non-zero", self.gpe0_len));
        }
        Ok(())
    }

    /// The distinct ISA IRQs used by PCI INTx, in ascending order.
    fn pci_irqs(&self) -> Vec<u8> {
        let mut irqs = self.pirq_irqs.to_vec();
        irqs.sort_unstable();
        irqs.dedup();
        irqs
    }
}

/// Writes the ACPI tables into the region starting at [`layout::ACPI_TABLES_START`] and returns
/// the guest-physical address of the RSDP (to hand to the OS through boot_params or PVH).
pub fn write_acpi_tables(mem: &GuestMem, cfg: &AcpiConfig) -> Result<u64, Error> {
    cfg.validate()?;

    let dsdt = build_dsdt(cfg);
    let madt = build_madt(cfg);
    let facs = acpi_tables::facs::FACS::new();

    // Lay the tables out back to back after the RSDP. 64-byte alignment satisfies the FACS
    // (ACPI 6.5 5.2.10: "aligned on a 64-byte boundary") and is harmless for the rest.
    let mut next = layout::RSDP_ADDR + Rsdp::len() as u64;
    let mut place = |len: usize| {
        let addr = align_up(next, 64);
        next = addr + len as u64;
        addr
    };
    let xsdt_addr = place(36 + 2 * 8);
    let fadt_addr = place(acpi_tables::fadt::FADT::len());
    let facs_addr = place(acpi_tables::facs::FACS::len());
    let madt_addr = place(madt.len());
    let dsdt_addr = place(dsdt.len());
    let end = next;
    if end > layout::ACPI_TABLES_END {
        return Err(Error::AcpiTablesTooLarge {
            size: end - layout::ACPI_TABLES_START,
            room: layout::ACPI_TABLES_END - layout::ACPI_TABLES_START,
        });
    }

    let fadt = build_fadt(cfg, facs_addr, dsdt_addr);
    let mut xsdt = XSDT::new(OEM_ID, *b"RDM XSDT", OEM_REVISION);
    xsdt.add_entry(fadt_addr);
    xsdt.add_entry(madt_addr);
    let rsdp = Rsdp::new(OEM_ID, xsdt_addr);

    write_guest(mem, "ACPI DSDT", dsdt_addr, dsdt.as_slice())?;
    write_guest(mem, "ACPI MADT", madt_addr, madt.as_slice())?;
    write_guest(mem, "ACPI FACS", facs_addr, &to_bytes(&facs))?;
    write_guest(mem, "ACPI FADT", fadt_addr, &to_bytes(&fadt))?;
    write_guest(mem, "ACPI XSDT", xsdt_addr, &to_bytes(&xsdt))?;
    write_guest(mem, "ACPI RSDP", layout::RSDP_ADDR, &to_bytes(&rsdp))?;
    Ok(layout::RSDP_ADDR)
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

fn to_bytes(table: &dyn Aml) -> Vec<u8> {
    let mut bytes = Vec::new();
    table.to_aml_bytes(&mut bytes);
    bytes
}

fn io_gas(port: u16, bytes: u8) -> GAS {
    GAS::new(GasSpace::SystemIo, bytes * 8, 0, AccessSize::Undefined, u64::from(port))
}

/// FADT (ACPI 6.5 5.2.9), revision 6.5, describing the PIIX4 fixed hardware.
fn build_fadt(cfg: &AcpiConfig, facs_addr: u64, dsdt_addr: u64) -> acpi_tables::fadt::FADT {
    // ACPI 6.5 table 5.10, IA-PC boot architecture flags.
    const IAPC_LEGACY_DEVICES: u16 = 1 << 0;
    const IAPC_8042: u16 = 1 << 1;
    // A latency above 100 (C2) / 1000 (C3) microseconds means "state not supported".
    const NO_C2: u16 = 0x0fff;
    const NO_C3: u16 = 0x0fff;
    // MC146818 CMOS index of the century byte.
    const RTC_CENTURY: u8 = 0x32;

    const PM1_EVT_LEN: u8 = 4;
    const PM1_CNT_LEN: u8 = 2;
    const PM_TMR_LEN: u8 = 4;

    let pm1a_evt = cfg.pm_base;
    let pm1a_cnt = cfg.pm_base + 4;
    let pm_tmr = cfg.pm_base + 8;

    let mut f = FADTBuilder::new(OEM_ID, *b"RDM FACP", OEM_REVISION)
        .flag(Flags::Wbinvd)
        .flag(Flags::ProcC1)
        .flag(Flags::SlpButton)
        .flag(Flags::ResetRegSup)
        .gpe_info(u32::from(cfg.gpe0_base), 0, cfg.gpe0_len, 0, 0);
    // 32-bit and 64-bit pointers both set and equal; OSPM prefers the X_ ones.
    f.firmware_ctrl = (facs_addr as u32).into();
    f.x_firmware_ctrl = facs_addr.into();
    f.dsdt = (dsdt_addr as u32).into();
    f.x_dsdt = dsdt_addr.into();
    f.sci_int = u16::from(cfg.sci_irq).into();
    f.smi_cmd = u32::from(cfg.smi_cmd).into();
    f.acpi_enable = cfg.acpi_enable;
    f.acpi_disable = cfg.acpi_disable;
    f.pm1a_evt_blk = u32::from(pm1a_evt).into();
    f.pm1a_cnt_blk = u32::from(pm1a_cnt).into();
    f.pm_tmr_blk = u32::from(pm_tmr).into();
    f.pm1_evt_len = PM1_EVT_LEN;
    f.pm1_cnt_len = PM1_CNT_LEN;
    f.pm_tmr_len = PM_TMR_LEN;
    f.p_lvl2_lat = NO_C2.into();
    f.p_lvl3_lat = NO_C3.into();
    f.century = RTC_CENTURY;
    f.iapc_boot_arch = (IAPC_LEGACY_DEVICES | IAPC_8042).into();
    f.reset_reg = GAS::new(GasSpace::SystemIo, 8, 0, AccessSize::ByteAccess, u64::from(cfg.reset_port));
    f.reset_value = cfg.reset_value;
    f.x_pm1a_evt_blk = io_gas(pm1a_evt, PM1_EVT_LEN);
    f.x_pm1a_cnt_blk = io_gas(pm1a_cnt, PM1_CNT_LEN);
    f.x_pm_tmr_blk = io_gas(pm_tmr, PM_TMR_LEN);
    f.x_gpe0_blk = io_gas(cfg.gpe0_base, cfg.gpe0_len);
    f.finalize()
}

/// MADT (ACPI 6.5 5.2.12): one local APIC per vCPU, the IO-APIC, ISA interrupt overrides and
/// the LINT1 NMI wiring. Written by hand because acpi_tables has no override/NMI structures and
/// no way to set the PCAT_COMPAT flag.
fn build_madt(cfg: &AcpiConfig) -> Sdt {
    const PCAT_COMPAT: u32 = 1;
    const TYPE_LOCAL_APIC: u8 = 0;
    const TYPE_IO_APIC: u8 = 1;
    const TYPE_INT_SRC_OVERRIDE: u8 = 2;
    const TYPE_LOCAL_APIC_NMI: u8 = 4;
    const LAPIC_ENABLED: u32 = 1;
    // MPS INTI flags (ACPI 6.5 table 5.26): polarity bits 1:0, trigger mode bits 3:2.
    const ACTIVE_HIGH: u16 = 0b01;
    const EDGE: u16 = 0b01 << 2;
    const LEVEL: u16 = 0b11 << 2;

    let mut madt = Sdt::new(*b"APIC", 36, 5, OEM_ID, *b"RDM APIC", OEM_REVISION);
    let mut body = Vec::new();
    body.extend_from_slice(&(layout::LAPIC_START as u32).to_le_bytes());
    body.extend_from_slice(&PCAT_COMPAT.to_le_bytes());

    for cpu in 0..cfg.cpus {
        body.extend_from_slice(&[TYPE_LOCAL_APIC, 8, cpu, cpu]);
        body.extend_from_slice(&LAPIC_ENABLED.to_le_bytes());
    }

    body.extend_from_slice(&[TYPE_IO_APIC, 12, cfg.cpus, 0]);
    body.extend_from_slice(&(layout::IOAPIC_START as u32).to_le_bytes());
    body.extend_from_slice(&0u32.to_le_bytes()); // GSI base

    let mut override_irq = |irq: u8, gsi: u32, flags: u16| {
        body.extend_from_slice(&[TYPE_INT_SRC_OVERRIDE, 10, 0 /* ISA bus */, irq]);
        body.extend_from_slice(&gsi.to_le_bytes());
        body.extend_from_slice(&flags.to_le_bytes());
    };
    // The PIT's IRQ0 is wired to IO-APIC pin 2 (pin 0 carries the 8259's INTR).
    override_irq(0, 2, ACTIVE_HIGH | EDGE);
    // The SCI is a shareable level interrupt.
    override_irq(cfg.sci_irq, u32::from(cfg.sci_irq), ACTIVE_HIGH | LEVEL);
    // PCI INTx routed through PIIX3 PIRQs; our IO-APIC sees them active high.
    for irq in cfg.pci_irqs() {
        if irq != cfg.sci_irq {
            override_irq(irq, u32::from(irq), ACTIVE_HIGH | LEVEL);
        }
    }

    // NMI on LINT1 of every local APIC (processor UID 0xff = all).
    body.extend_from_slice(&[TYPE_LOCAL_APIC_NMI, 6, 0xff]);
    body.extend_from_slice(&0u16.to_le_bytes()); // flags: conforms to bus
    body.push(1); // LINT1

    madt.append_slice(&body);
    madt
}

/// A legacy ISA device node with fixed resources.
fn isa_device(name: &str, hid: &str, uid: u8, resources: &[&dyn Aml]) -> Vec<u8> {
    let hid = aml::EISAName::new(hid);
    let crs = aml::ResourceTemplate::new(resources.to_vec());
    to_bytes(&aml::Device::new(
        name.into(),
        vec![
            &aml::Name::new("_HID".into(), &hid),
            &aml::Name::new("_UID".into(), &uid),
            &aml::Name::new("_CRS".into(), &crs),
        ],
    ))
}

struct RawAml(Vec<u8>);

impl Aml for RawAml {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(&self.0);
    }
}

/// DSDT: `\_SB.PCI0` with its resources, `_PRT` and the ISA devices, plus `\_S5`.
fn build_dsdt(cfg: &AcpiConfig) -> Sdt {
    // Root bridge windows: the config ports 0xcf8-0xcff are the bridge's own, every other I/O
    // port and the VGA window and MMIO window are forwarded to the bus.
    let bus = aml::AddressSpace::<u16>::new_bus_number(0, 0xff);
    let io_low = aml::AddressSpace::<u16>::new_io(0, 0x0cf7, None);
    let io_cfg = aml::IO::new(0x0cf8, 0x0cf8, 1, 8);
    let io_high = aml::AddressSpace::<u16>::new_io(0x0d00, 0xffff, None);
    let vga =
        aml::AddressSpace::<u32>::new_memory(aml::AddressSpaceCacheable::Cacheable, true, 0xa_0000, 0xb_ffff, None);
    let mmio_last = cfg.pci_mmio_end - 1;
    let mmio32;
    let mmio64;
    let mmio: &dyn Aml = if mmio_last <= u64::from(u32::MAX) {
        mmio32 = aml::AddressSpace::<u32>::new_memory(
            aml::AddressSpaceCacheable::NotCacheable,
            true,
            cfg.pci_mmio_start as u32,
            mmio_last as u32,
            None,
        );
        &mmio32
    } else {
        mmio64 = aml::AddressSpace::<u64>::new_memory(
            aml::AddressSpaceCacheable::NotCacheable,
            true,
            cfg.pci_mmio_start,
            mmio_last,
            None,
        );
        &mmio64
    };
    let crs = aml::ResourceTemplate::new(vec![&bus, &io_low, &io_cfg, &io_high, &vga, mmio]);

    // _PRT (ACPI 6.5 6.2.13): the board routes device `slot` pin INTx to a PIIX3 PIRQ
    // (`intx_pirq`, the swizzle the device model's router implements); each entry names the
    // resulting IO-APIC GSI directly.
    let mut prt = aml::PackageBuilder::new();
    for slot in 1u32..32 {
        for pin in 0u32..4 {
            let address = (slot << 16) | 0xffff;
            let pirq = devices::chipset::piix3::intx_pirq(slot as u8, pin as u8 + 1).unwrap_or(0);
            let gsi = u32::from(cfg.pirq_irqs[usize::from(pirq)]);
            prt.add_element(&aml::Package::new(vec![&address, &pin, &aml::ZERO, &gsi]));
        }
    }

    use devices::pc::layout as pc;
    let (com1_base, com1_irq) = pc::port::COM[0];
    let com1_io = aml::IO::new(com1_base, com1_base, 0, pc::port::COM_LEN as u8);
    let com1_irq = aml::Interrupt::new(true, true, false, false, com1_irq.into());
    let rtc_io = aml::IO::new(pc::port::CMOS.0, pc::port::CMOS.0, 1, 8);
    let rtc_irq = aml::Interrupt::new(true, true, false, false, pc::irq::RTC.into());
    let kbd_data = aml::IO::new(pc::port::I8042_DATA.0, pc::port::I8042_DATA.0, 1, 1);
    let kbd_cmd = aml::IO::new(pc::port::I8042_COMMAND.0, pc::port::I8042_COMMAND.0, 1, 1);
    let kbd_irq = aml::Interrupt::new(true, true, false, false, pc::irq::KEYBOARD.into());
    let com1 = RawAml(isa_device("COM1", "PNP0501", 1, &[&com1_io, &com1_irq]));
    let rtc = RawAml(isa_device("RTC_", "PNP0B00", 0, &[&rtc_io, &rtc_irq]));
    let kbd = RawAml(isa_device("KBD_", "PNP0303", 0, &[&kbd_data, &kbd_cmd, &kbd_irq]));
    // The PS/2 mouse on the i8042 aux port: IRQ 12 only (its ports are the keyboard's). Linux's
    // i8042 PNP probe disables the aux port when ACPI lists no PNP0F13 (QEMU's DSDT has MOU).
    let mou_irq = aml::Interrupt::new(true, true, false, false, pc::irq::MOUSE.into());
    let mou = RawAml(isa_device("MOU_", "PNP0F13", 0, &[&mou_irq]));

    let pci0 = RawAml(to_bytes(&aml::Device::new(
        "PCI0".into(),
        vec![
            &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0A03")),
            &aml::Name::new("_ADR".into(), &aml::ZERO),
            &aml::Name::new("_UID".into(), &aml::ZERO),
            &aml::Name::new("_CRS".into(), &crs),
            &aml::Name::new("_PRT".into(), &prt),
            &com1,
            &rtc,
            &kbd,
            &mou,
        ],
    )));
    let sb = aml::Scope::new("\\_SB_".into(), vec![&pci0]);
    // \_S5: SLP_TYP 0 for PM1a and PM1b (PIIX4 encodes soft-off as sleep type 0).
    let s5 = aml::Name::new("\\_S5_".into(), &aml::Package::new(vec![&aml::ZERO, &aml::ZERO, &aml::ZERO, &aml::ZERO]));

    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, *b"RDM DSDT", OEM_REVISION);
    dsdt.append_slice(&to_bytes(&sb));
    dsdt.append_slice(&to_bytes(&s5));
    dsdt
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{guest_mem, read, u16_at, u32_at, u64_at};

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b))
    }

    /// Reads the table at `addr`, checking its checksum, and returns its bytes.
    fn table(mem: &GuestMem, addr: u64, signature: &[u8; 4]) -> Vec<u8> {
        let header = read(mem, addr, 36);
        assert_eq!(&header[0..4], signature);
        let len = u32_at(&header, 4) as usize;
        assert!(len >= 36);
        let bytes = read(mem, addr, len);
        assert_eq!(sum(&bytes), 0, "{} checksum", String::from_utf8_lossy(signature));
        bytes
    }

    struct Tables {
        fadt: Vec<u8>,
        madt: Vec<u8>,
        dsdt: Vec<u8>,
        facs_addr: u64,
        facs: Vec<u8>,
    }

    fn write_and_parse(cfg: &AcpiConfig) -> Tables {
        let mem = guest_mem(64 << 20);
        let rsdp_addr = write_acpi_tables(&mem, cfg).unwrap();
        assert_eq!(rsdp_addr, 0xe0000);
        // A legacy scan needs the RSDP on a 16-byte boundary in 0xe0000..0xfffff.
        assert_eq!(rsdp_addr % 16, 0);

        let rsdp = read(&mem, rsdp_addr, 36);
        assert_eq!(&rsdp[0..8], b"RSD PTR ");
        assert_eq!(rsdp[15], 2, "RSDP revision");
        assert_eq!(sum(&rsdp[0..20]), 0, "RSDP checksum");
        assert_eq!(u32_at(&rsdp, 20), 36);
        assert_eq!(sum(&rsdp), 0, "RSDP extended checksum");

        let xsdt = table(&mem, u64_at(&rsdp, 24), b"XSDT");
        let entries: Vec<u64> = xsdt[36..].chunks(8).map(|c| u64_at(c, 0)).collect();
        assert_eq!(entries.len(), 2);
        let fadt = table(&mem, entries[0], b"FACP");
        let madt = table(&mem, entries[1], b"APIC");

        let facs_addr = u64_at(&fadt, 132);
        assert_eq!(u64::from(u32_at(&fadt, 36)), facs_addr, "FIRMWARE_CTRL == X_FIRMWARE_CTRL");
        let facs = read(&mem, facs_addr, 64);
        let dsdt_addr = u64_at(&fadt, 140);
        assert_eq!(u64::from(u32_at(&fadt, 40)), dsdt_addr, "DSDT == X_DSDT");
        let dsdt = table(&mem, dsdt_addr, b"DSDT");

        // Everything lives in the reserved region.
        for addr in entries.iter().copied().chain([facs_addr, dsdt_addr]) {
            assert!((0xe0000..0x100000).contains(&addr));
        }
        Tables { fadt, madt, dsdt, facs_addr, facs }
    }

    #[test]
    fn fadt_describes_the_piix4_fixed_hardware() {
        let cfg = AcpiConfig::default();
        let t = write_and_parse(&cfg);
        let f = &t.fadt;
        assert_eq!(f.len(), 276);
        assert_eq!(u16_at(f, 46), 9, "SCI_INT");
        assert_eq!(u32_at(f, 48), 0xb2, "SMI_CMD");
        assert_eq!((f[52], f[53]), (0xf1, 0xf0), "ACPI_ENABLE/ACPI_DISABLE");
        assert_eq!(u32_at(f, 56), 0xb000, "PM1a_EVT_BLK");
        assert_eq!(u32_at(f, 64), 0xb004, "PM1a_CNT_BLK");
        assert_eq!(u32_at(f, 76), 0xb008, "PM_TMR_BLK");
        assert_eq!(u32_at(f, 80), 0xafe0, "GPE0_BLK");
        assert_eq!((f[88], f[89], f[91], f[92]), (4, 2, 4, 4), "block lengths");
        let iapc = u16_at(f, 109);
        assert_eq!(iapc & 0b11, 0b11, "legacy devices + 8042");
        let flags = u32_at(f, 112);
        assert_ne!(flags & (1 << 10), 0, "RESET_REG_SUP");
        assert_eq!(flags & (1 << 20), 0, "must not be hardware-reduced");
        // RESET_REG: GAS in system I/O space at 0xcf9, value 6.
        assert_eq!(f[116], 1, "RESET_REG in I/O space");
        assert_eq!(f[117], 8, "RESET_REG width");
        assert_eq!(u64_at(f, 120), 0xcf9);
        assert_eq!(f[128], 0x06, "RESET_VALUE");
        // X_PM1a_CNT_BLK agrees with PM1a_CNT_BLK.
        assert_eq!(f[172], 1);
        assert_eq!(u64_at(f, 176), 0xb004);
        // FACS is 64-byte aligned and well-formed.
        assert_eq!(t.facs_addr % 64, 0);
        assert_eq!(&t.facs[0..4], b"FACS");
        assert_eq!(u32_at(&t.facs, 4), 64);
    }

    #[test]
    fn fadt_follows_the_config() {
        let cfg = AcpiConfig { pm_base: 0x600, sci_irq: 11, reset_port: 0x92, reset_value: 1, ..Default::default() };
        let f = write_and_parse(&cfg).fadt;
        assert_eq!(u32_at(&f, 64), 0x604);
        assert_eq!(u16_at(&f, 46), 11);
        assert_eq!(u64_at(&f, 120), 0x92);
        assert_eq!(f[128], 1);
    }

    /// Parses the MADT's interrupt controller structures as (type, bytes).
    fn madt_entries(madt: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 44;
        while off < madt.len() {
            let len = madt[off + 1] as usize;
            assert!(len >= 2 && off + len <= madt.len());
            out.push((madt[off], madt[off..off + len].to_vec()));
            off += len;
        }
        out
    }

    #[test]
    fn madt_lists_every_cpu_the_ioapic_and_overrides() {
        for cpus in [1u8, 4, 64] {
            let cfg = AcpiConfig { cpus, ..Default::default() };
            let madt = write_and_parse(&cfg).madt;
            assert_eq!(u32_at(&madt, 36), 0xfee0_0000);
            assert_eq!(u32_at(&madt, 40) & 1, 1, "PCAT_COMPAT");
            let entries = madt_entries(&madt);
            let lapics: Vec<_> = entries.iter().filter(|e| e.0 == 0).collect();
            assert_eq!(lapics.len(), cpus as usize);
            for (i, (_, l)) in lapics.iter().enumerate() {
                assert_eq!(l[3] as usize, i, "APIC id");
                assert_eq!(u32_at(l, 4) & 1, 1, "enabled");
            }
            let ioapics: Vec<_> = entries.iter().filter(|e| e.0 == 1).collect();
            assert_eq!(ioapics.len(), 1);
            assert_eq!(ioapics[0].1[2], cpus, "IO-APIC id");
            assert_eq!(u32_at(&ioapics[0].1, 4), 0xfec0_0000);
            assert_eq!(u32_at(&ioapics[0].1, 8), 0);
            // Overrides: IRQ0->GSI2, IRQ9, IRQ10, IRQ11.
            let isos: Vec<(u8, u32, u16)> =
                entries.iter().filter(|e| e.0 == 2).map(|(_, b)| (b[3], u32_at(b, 4), u16_at(b, 8))).collect();
            assert_eq!(isos, vec![(0, 2, 0x5), (9, 9, 0xd), (10, 10, 0xd), (11, 11, 0xd)]);
            assert_eq!(entries.iter().filter(|e| e.0 == 4).count(), 1, "LAPIC NMI");
            assert_eq!(entries.len(), cpus as usize + 6);
        }
    }

    #[test]
    fn madt_does_not_repeat_the_sci_override_for_a_pci_irq() {
        let cfg = AcpiConfig { pirq_irqs: [9, 9, 9, 9], ..Default::default() };
        let madt = write_and_parse(&cfg).madt;
        let isos = madt_entries(&madt).iter().filter(|e| e.0 == 2).count();
        assert_eq!(isos, 2);
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn dsdt_has_s5_pci_root_and_routing() {
        let t = write_and_parse(&AcpiConfig::default());
        let d = &t.dsdt;
        assert_eq!(d[8], 2, "DSDT revision 2 (64-bit integers)");
        // \_S5_ = Package(4) {0, 0, 0, 0}: NameOp '\' "_S5_" PackageOp len 4 Zero*4
        assert!(contains(d, &[0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0, 0, 0, 0]));
        assert!(contains(d, b"PCI0"));
        assert!(contains(d, b"_PRT"));
        // PNP0A03 as an EISA id.
        assert!(contains(d, &[0x0c, 0x41, 0xd0, 0x0a, 0x03]));
        // COM1 (PNP0501), RTC (PNP0B00), keyboard (PNP0303), PS/2 mouse (PNP0F13).
        assert!(contains(d, &[0x0c, 0x41, 0xd0, 0x05, 0x01]));
        assert!(contains(d, &[0x0c, 0x41, 0xd0, 0x0b, 0x00]));
        assert!(contains(d, &[0x0c, 0x41, 0xd0, 0x03, 0x03]));
        assert!(contains(d, &[0x0c, 0x41, 0xd0, 0x0f, 0x13]));
        // The MMIO window's last address appears as a DWord.
        assert!(contains(d, &0xfebf_ffffu32.to_le_bytes()));
    }

    /// Extracts the GSI of every _PRT entry, keyed by (slot, pin).
    fn prt_entries(dsdt: &[u8]) -> Vec<(u32, u32, u32)> {
        // Each entry: PackageOp PkgLen NumElements(4) DWordPrefix addr pin Zero gsi, encoded
        // by acpi_tables as 0x12 len 0x04 0x0c <addr u32> <pin> 0x00 <gsi as BytePrefix+u8>.
        let mut out = Vec::new();
        let mut i = 0;
        while i + 8 < dsdt.len() {
            if dsdt[i] == 0x12 && dsdt[i + 2] == 0x04 && dsdt[i + 3] == 0x0c && u16_at(dsdt, i + 4) == 0xffff {
                let addr = u32_at(dsdt, i + 4);
                let mut j = i + 8;
                let mut int = || {
                    let v = match dsdt[j] {
                        0x00 => (0, 1),
                        0x01 => (1, 1),
                        0x0a => (u32::from(dsdt[j + 1]), 2),
                        op => panic!("unexpected opcode {op:#x}"),
                    };
                    j += v.1;
                    v.0
                };
                let pin = int();
                let source = int();
                let gsi = int();
                assert_eq!(source, 0);
                out.push((addr >> 16, pin, gsi));
                i = j;
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn prt_follows_the_piix3_swizzle() {
        let cfg = AcpiConfig { pirq_irqs: [5, 10, 11, 14], ..Default::default() };
        let t = write_and_parse(&cfg);
        let prt = prt_entries(&t.dsdt);
        assert_eq!(prt.len(), 31 * 4);
        for (slot, pin, gsi) in prt {
            assert!((1..32).contains(&slot));
            // QEMU's pc board: slot - 1 + pin (0-based) mod 4.
            assert_eq!(gsi, u32::from(cfg.pirq_irqs[((slot + 3 + pin) % 4) as usize]));
        }
    }

    #[test]
    fn refuses_configs_it_cannot_describe() {
        let mem = guest_mem(16 << 20);
        for cfg in [
            AcpiConfig { cpus: 0, ..Default::default() },
            AcpiConfig { cpus: 255, ..Default::default() },
            AcpiConfig { pci_mmio_start: 0xf000_0000, pci_mmio_end: 0xe000_0000, ..Default::default() },
            AcpiConfig { pirq_irqs: [10, 10, 16, 11], ..Default::default() },
        ] {
            let err = write_acpi_tables(&mem, &cfg).unwrap_err();
            assert!(matches!(err, Error::AcpiConfig(_)), "{err}");
        }
    }

    #[test]
    fn many_cpus_still_fit() {
        let t = write_and_parse(&AcpiConfig { cpus: 254, ..Default::default() });
        assert_eq!(madt_entries(&t.madt).iter().filter(|e| e.0 == 0).count(), 254);
    }
}

//! The PC's fixed resources: ISA IRQs, port ranges, PCI addresses and the PIRQ routes firmware
//! programs. This is the one table: the devices' own constants, machine assembly, the fuzzers
//! and the ACPI tables (`firmware::acpi`) all read it, so a number is written once.
//!
//! The values are the ones hvmloader, SeaBIOS, QEMU's `pc`/`xenfv` machines and guest OSes
//! expect of an i440FX/PIIX3 PC.

use crate::pci::PciAddress;

/// ISA IRQs (the 8259 pair's inputs, IO-APIC pins 0-15).
pub mod irq {
    pub const KEYBOARD: u8 = 1;
    pub const COM2_COM4: u8 = 3;
    pub const COM1_COM3: u8 = 4;
    pub const RTC: u8 = 8;
    /// The ACPI SCI (PIIX4 PM), level-triggered and shareable.
    pub const SCI: u8 = 9;
    pub const MOUSE: u8 = 12;
    pub const IDE_PRIMARY: u8 = 14;
    pub const IDE_SECONDARY: u8 = 15;
}

/// Fixed I/O port ranges: (base, length).
pub mod port {
    /// Xen platform device's legacy ports (PV-driver unplug and logging), `xenfv` only.
    pub const XEN_PLATFORM: (u16, u16) = (0x10, 0x10);
    pub const I8042_DATA: (u16, u16) = (0x60, 1);
    pub const I8042_COMMAND: (u16, u16) = (0x64, 1);
    pub const CMOS: (u16, u16) = (0x70, 2);
    /// System control port A (fast A20 and reset).
    pub const PORT92: (u16, u16) = (0x92, 1);
    /// APM control and status (the ACPI SMI command port).
    pub const SMI_CMD: (u16, u16) = (0xb2, 2);
    /// Bochs/QEMU debug console.
    pub const DEBUG_CONSOLE: (u16, u16) = (0xe9, 1);
    /// PIIX3 reset control register (also the ACPI reset register).
    pub const RESET_CONTROL: (u16, u16) = (0xcf9, 1);
    /// PIIX4 PM: ACPI PM1a event/control and PM timer.
    pub const PM: (u16, u16) = (0xb000, 0x40);
    /// PIIX4 PM: GPE0 status and enable bytes.
    pub const GPE0: (u16, u16) = (0xafe0, 4);
    /// COM1-COM4 with their IRQs.
    pub const COM: [(u16, u8); 4] = [
        (0x3f8, super::irq::COM1_COM3),
        (0x2f8, super::irq::COM2_COM4),
        (0x3e8, super::irq::COM1_COM3),
        (0x2e8, super::irq::COM2_COM4),
    ];
    pub const COM_LEN: u16 = 8;
}

/// PCI functions of the board.
pub mod pci {
    use super::PciAddress;
    pub const HOST_BRIDGE: PciAddress = PciAddress::new(0, 0, 0);
    pub const PIIX3_ISA: PciAddress = PciAddress::new(0, 1, 0);
    pub const PIIX3_IDE: PciAddress = PciAddress::new(0, 1, 1);
    pub const PIIX4_PM: PciAddress = PciAddress::new(0, 1, 3);
    /// The first slot left for other devices (VGA, xen-platform, `-device`), as on QEMU's `pc`.
    pub const FIRST_FREE_SLOT: u8 = 2;
}

/// The ISA IRQs PIRQA-D are routed to, as firmware programs PIRQRC (SeaBIOS `pci_irqs`, and we
/// when we boot a kernel directly); the ACPI `_PRT` and MADT describe these.
pub const PIRQ_ROUTES: [u8; 4] = [10, 10, 11, 11];

/// The value written to the reset control register that resets the machine (ACPI FADT
/// RESET_VALUE): system reset plus reset CPU.
pub const RESET_VALUE: u8 = 0x06;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_port_ranges_do_not_overlap() {
        let mut ranges: Vec<(u16, u16)> = vec![
            port::XEN_PLATFORM,
            port::I8042_DATA,
            port::I8042_COMMAND,
            port::CMOS,
            port::PORT92,
            port::SMI_CMD,
            port::DEBUG_CONSOLE,
            port::RESET_CONTROL,
            port::PM,
            port::GPE0,
        ];
        ranges.extend(port::COM.iter().map(|&(b, _)| (b, port::COM_LEN)));
        ranges.sort();
        for w in ranges.windows(2) {
            assert!(w[0].0 as u32 + w[0].1 as u32 <= w[1].0 as u32, "{:x?} overlaps {:x?}", w[0], w[1]);
        }
    }
}

//! The i440FX/PIIX3/PIIX4 chipset functions Xen's hvmloader and Linux expect: the host bridge at
//! 00:00.0, the ISA bridge at 00:01.0 and the ACPI power-management function at 00:01.3 with its
//! fixed I/O blocks.

pub mod i440fx;
pub mod piix3;
pub mod piix4_pm;

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::bus::{AddressSpace, IoBus};
    use crate::clock::ManualClock;
    use crate::interrupt::RecordingLine;
    use crate::vm_control::{RecordingVmControl, VmRequest};

    /// The chipset as the machine assembles it, reached only through guest port I/O.
    type Machine = (IoBus, Arc<RecordingLine>, Arc<RecordingVmControl>, Arc<Mutex<piix4_pm::PmIo>>);

    fn machine() -> Machine {
        let bus = IoBus::new();
        let sci = Arc::new(RecordingLine::default());
        let vm = Arc::new(RecordingVmControl::default());
        bus.add_pci_device(i440fx::I440FX_ADDRESS, Arc::new(Mutex::new(i440fx::I440fx::new()))).unwrap();
        bus.add_pci_device(piix3::PIIX3_ADDRESS, Arc::new(Mutex::new(piix3::Piix3::new()))).unwrap();
        let (function, pm) = piix4_pm::new(sci.clone(), vm.clone(), Arc::new(ManualClock::new(0)));
        bus.add_pci_device(piix4_pm::PIIX4_PM_ADDRESS, function).unwrap();
        bus.insert(AddressSpace::Io, piix4_pm::PM_BASE as u64, piix4_pm::PM_IO_LEN as u64, "pm", pm.clone()).unwrap();
        bus.insert(AddressSpace::Io, piix4_pm::GPE0_BLK as u64, piix4_pm::GPE0_BLK_LEN as u64, "gpe0", pm.clone())
            .unwrap();
        bus.insert(
            AddressSpace::Io,
            piix4_pm::SMI_CMD_PORT as u64,
            2,
            "apm",
            Arc::new(Mutex::new(piix4_pm::ApmControl::new(pm.clone()))),
        )
        .unwrap();
        (bus, sci, vm, pm)
    }

    fn config_read32(bus: &IoBus, dev: u8, func: u8, reg: u8) -> u32 {
        let a = 0x8000_0000u32 | (dev as u32) << 11 | (func as u32) << 8 | reg as u32;
        bus.pio_write(0xcf8, &a.to_le_bytes());
        let mut d = [0u8; 4];
        bus.pio_read(0xcfc, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn a_bus_scan_finds_the_three_chipset_functions() {
        let (bus, _, _, _) = machine();
        let mut found = Vec::new();
        for dev in 0..32u8 {
            for func in 0..8u8 {
                let id = config_read32(&bus, dev, func, 0);
                if id != 0xffff_ffff {
                    found.push((dev, func, id, config_read32(&bus, dev, func, 8) >> 16));
                }
            }
        }
        assert_eq!(found, vec![(0, 0, 0x1237_8086, 0x0600), (1, 0, 0x7000_8086, 0x0601), (1, 3, 0x7113_8086, 0x0680)]);
    }

    #[test]
    fn acpi_enable_then_poweroff_through_port_io() {
        let (bus, sci, vm, pm) = machine();
        bus.pio_write(piix4_pm::SMI_CMD_PORT, &[piix4_pm::ACPI_ENABLE]);
        let mut d = [0u8; 2];
        bus.pio_read(piix4_pm::PM1A_CNT_BLK, &mut d);
        assert_eq!(u16::from_le_bytes(d) & piix4_pm::PM1_CNT_SCI_EN, piix4_pm::PM1_CNT_SCI_EN);
        // A hotplug event on GPE0 bit 1 interrupts once the OS enables that GPE.
        pm.lock().unwrap().raise_gpe(1);
        assert!(!sci.level());
        bus.pio_write(piix4_pm::GPE0_BLK + 2, &[0x02, 0]);
        assert!(sci.level());
        bus.pio_write(piix4_pm::GPE0_BLK, &[0x02]);
        assert!(!sci.level());
        bus.pio_write(piix4_pm::PM1A_CNT_BLK, &(piix4_pm::PM1_CNT_SCI_EN | piix4_pm::PM1_CNT_SLP_EN).to_le_bytes());
        assert_eq!(vm.take(), vec![VmRequest::PowerOff]);
    }
}

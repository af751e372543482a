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
    use crate::bus::IoBus;
    use crate::clock::ManualClock;
    use crate::interrupt::{RecordingInterruptService, RecordingInterrupts, RecordingLine};
    use crate::memory::TestMemory;
    use crate::pc::{build_pc, PcConfig, Platform};
    use crate::timer::ManualTimers;
    use crate::vm_control::{RecordingVmControl, VmRequest};

    /// The machine as `build_pc` assembles it, reached only through guest port I/O.
    type Machine = (Arc<IoBus>, Arc<RecordingLine>, Arc<RecordingVmControl>, Arc<Mutex<piix4_pm::PmIo>>);

    fn machine() -> Machine {
        let irqs = RecordingInterrupts::new();
        let vm = Arc::new(RecordingVmControl::default());
        let platform = Platform {
            interrupts: Arc::new(RecordingInterruptService(irqs.clone())),
            control: vm.clone(),
            timers: ManualTimers::new(Arc::new(ManualClock::new(0))),
            dma_memory: Arc::new(TestMemory::new(1 << 20)),
            vram: Arc::new(crate::display::HostVram),
        };
        let config = PcConfig {
            ram_below_4g: 1 << 20,
            ram_above_4g: 0,
            boot_order: "c".into(),
            cpus: 1,
            serial_outputs: Vec::new(),
            ide_drives: Default::default(),
            xen_platform: None,
            ide_io_workers: None,
        };
        let pc = build_pc(config, platform).unwrap();
        (pc.devices.bus.clone(), irqs.isa_line(crate::pc::layout::irq::SCI), vm, pc.pm)
    }

    fn config_read32(bus: &IoBus, dev: u8, func: u8, reg: u8) -> u32 {
        let a = 0x8000_0000u32 | (dev as u32) << 11 | (func as u32) << 8 | reg as u32;
        bus.pio_write(0xcf8, &a.to_le_bytes());
        let mut d = [0u8; 4];
        bus.pio_read(0xcfc, &mut d);
        u32::from_le_bytes(d)
    }

    #[test]
    fn a_bus_scan_finds_the_four_board_functions() {
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
        assert_eq!(
            found,
            vec![
                (0, 0, 0x1237_8086, 0x0600),
                (1, 0, 0x7000_8086, 0x0601),
                (1, 1, 0x7010_8086, 0x0101),
                (1, 3, 0x7113_8086, 0x0680)
            ]
        );
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

//! Platform reset registers: the PIIX3 Reset Control Register at 0xcf9 and System Control Port A
//! (the "fast reset / A20" port) at 0x92.

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::vm_control::{VmControl, VmRequest};

use super::{read_bytes, write_bytes};

/// Port of the PIIX3 Reset Control Register (PIIX3 datasheet, 82371SB section 4.1.17 "RC").
pub const RESET_CONTROL_PORT: u64 = crate::pc::layout::port::RESET_CONTROL.0 as u64;
/// Port of System Control Port A (IBM PS/2 technical reference; PIIX3 datasheet "Port 92h").
pub const PORT_A: u64 = crate::pc::layout::port::PORT92.0 as u64;

/// RC bit 1: System Reset (SRST) selects hard (1) or soft (0) reset; we perform a platform reset
/// either way.
const RC_SYSTEM_RESET: u8 = 1 << 1;
/// RC bit 2: Reset CPU (RCPU). Writing 1 starts the reset selected by bit 1; it reads back as 0.
const RC_RESET_CPU: u8 = 1 << 2;

/// The Reset Control Register, one byte at 0xcf9 (the bus routes byte accesses of 0xcf8-0xcfb
/// that are not configuration-address DWORDs here).
pub struct ResetControl {
    value: u8,
    vm: Arc<dyn VmControl>,
}

impl ResetControl {
    pub fn new(vm: Arc<dyn VmControl>) -> Self {
        ResetControl { value: 0, vm }
    }

    /// Power-on value, for a machine reset.
    pub fn reset(&mut self) {
        self.value = 0;
    }

    fn write_byte(&mut self, value: u8) {
        if value & RC_RESET_CPU != 0 {
            log::info!(
                "guest requested a {} reset through port 0xcf9",
                if value & RC_SYSTEM_RESET != 0 { "hard" } else { "soft" }
            );
            self.vm.request(VmRequest::Reset);
        }
        // RCPU is a trigger, not state: it reads back 0.
        self.value = value & !RC_RESET_CPU;
    }
}

impl BusDevice for ResetControl {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| if a == RESET_CONTROL_PORT { self.value } else { 0xff });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| {
            if a == RESET_CONTROL_PORT {
                self.write_byte(v)
            }
        });
    }
}

/// Port A bit 0: fast reset (a 0 -> 1 transition resets the CPU).
const PORT_A_FAST_RESET: u8 = 1 << 0;
/// Port A bit 1: A20 gate (1 = address line 20 enabled).
const PORT_A_A20: u8 = 1 << 1;

/// System Control Port A at 0x92.
pub struct SystemControlPortA {
    value: u8,
    vm: Arc<dyn VmControl>,
}

impl SystemControlPortA {
    pub fn new(vm: Arc<dyn VmControl>) -> Self {
        SystemControlPortA { value: 0, vm }
    }

    /// Power-on value, for a machine reset (so the next 0 -> 1 write of bit 0 resets again).
    pub fn reset(&mut self) {
        self.value = 0;
    }

    /// Whether the guest has enabled the A20 line through this port. The device model cannot mask
    /// address line 20 (neither KVM nor Xen HVM emulate the wrap), so this is informational.
    pub fn a20_enabled(&self) -> bool {
        self.value & PORT_A_A20 != 0
    }

    fn write_byte(&mut self, value: u8) {
        let old = self.value;
        self.value = value;
        if value & PORT_A_FAST_RESET != 0 && old & PORT_A_FAST_RESET == 0 {
            log::info!("guest requested a reset through port 0x92");
            self.vm.request(VmRequest::Reset);
        }
    }
}

impl BusDevice for SystemControlPortA {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| if a == PORT_A { self.value } else { 0xff });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| {
            if a == PORT_A {
                self.write_byte(v)
            }
        });
    }
}

impl crate::snapshot::Snapshot for ResetControl {
    const ID: &'static str = "piix3-reset-control";
    const VERSION: u16 = 1;
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u8(self.value);
    }
    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        // RCPU is a trigger and never stored; restoring it must not reset the machine.
        let value = r.u8_where("value", |v| v & RC_RESET_CPU == 0, "a stored RC value (RCPU clear)")?;
        r.finish()?;
        self.value = value;
        Ok(())
    }
}

impl crate::snapshot::Snapshot for SystemControlPortA {
    const ID: &'static str = "port92";
    const VERSION: u16 = 1;
    /// The port's value, with the A20 gate (QEMU `vmstate_port92_isa`: outport).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.u8(self.value);
    }
    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let value = r.u8("value")?;
        r.finish()?;
        // Stored as is: a restored fast-reset bit is the state before the save, not a new 0 -> 1
        // transition, so it requests nothing.
        self.value = value;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm_control::RecordingVmControl;

    #[test]
    fn cf9_value_6_requests_a_reset_and_reads_back_without_rcpu() {
        let vm = Arc::new(RecordingVmControl::default());
        let mut rc = ResetControl::new(vm.clone());
        rc.write(0xcf9, &[0x02]);
        assert!(vm.take().is_empty(), "setting only the reset type must not reset");
        rc.write(0xcf9, &[0x06]);
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
        let mut d = [0u8];
        rc.read(0xcf9, &mut d);
        assert_eq!(d, [0x02]);
        rc.write(0xcf9, &[0x04]); // soft reset
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
    }

    #[test]
    fn port_92_resets_on_rising_bit_0_and_keeps_a20() {
        let vm = Arc::new(RecordingVmControl::default());
        let mut pa = SystemControlPortA::new(vm.clone());
        pa.write(0x92, &[0x02]);
        assert!(pa.a20_enabled());
        assert!(vm.take().is_empty());
        let mut d = [0u8];
        pa.read(0x92, &mut d);
        assert_eq!(d, [0x02]);
        pa.write(0x92, &[0x03]);
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
        pa.write(0x92, &[0x03]); // still 1: no new transition
        assert!(vm.take().is_empty());
        pa.write(0x92, &[0x02]);
        pa.write(0x92, &[0x03]);
        assert_eq!(vm.take(), vec![VmRequest::Reset]);
    }

    #[test]
    fn foreign_ports_and_wide_accesses_do_not_panic() {
        let vm = Arc::new(RecordingVmControl::default());
        let mut rc = ResetControl::new(vm.clone());
        let mut pa = SystemControlPortA::new(vm.clone());
        for addr in [0u64, 0x8e, 0x93, 0xcf5, 0xcfa, u64::MAX - 1, u64::MAX] {
            for len in 1..=4 {
                let mut d = vec![0u8; len];
                rc.read(addr, &mut d);
                pa.read(addr, &mut d);
                rc.write(addr, &[0xff; 4][..len]);
                pa.write(addr, &[0xfe; 4][..len]);
            }
        }
        assert!(vm.take().is_empty());
    }
}

//! Intel 82371SB PIIX3 PCI-to-ISA bridge, function 0 (00:01.0).
//!
//! hvmloader asserts that this function exists (8086:7000) and programs its PIRQ route control
//! registers: they say which ISA IRQ each of the four PCI interrupt lines PIRQA#-PIRQD# drives.
//! On Xen the hypervisor does the routing, so a change must be forwarded as
//! `set_pci_link_route`; on KVM the machine re-routes INTx itself. Both learn of changes through
//! the observer set with [`Piix3::set_pirq_observer`].

use crate::pci::config::{PciIds, STATUS_DEVSEL_MEDIUM};
use crate::pci::function::{PciFunction, PciFunctionDevice, PciResources};
use crate::pci::PciAddress;

/// Where the ISA bridge lives (function 0 of the multi-function PIIX3 device).
pub const PIIX3_ADDRESS: PciAddress = crate::pc::layout::pci::PIIX3_ISA;
pub const PIIX3_VENDOR_ID: u16 = 0x8086;
pub const PIIX3_DEVICE_ID: u16 = 0x7000;

/// PIRQRC A-D, PIRQx route control (82371SB datasheet section 2.2.10), one byte per PIRQ.
pub const PIRQRC: u8 = 0x60;
pub const PIRQ_COUNT: u8 = 4;
/// Bit 7: routing disabled. Bits 3:0: the ISA IRQ. Bits 6:4 are reserved and read zero.
const PIRQRC_DISABLE: u8 = 0x80;
const PIRQRC_IRQ_MASK: u8 = 0x0f;
const PIRQRC_WRITABLE: u8 = PIRQRC_DISABLE | PIRQRC_IRQ_MASK;

/// Other registers firmware reads or writes, kept as storage with their reset values (82371SB
/// section 2.2): ISA I/O recovery timer, X-Bus chip select, top of memory, misc status, motherboard
/// IRQ/DMA routing, APIC base, deterministic latency, SMI control and enables.
const STORAGE_REGISTERS: &[(u8, u8)] = &[
    (0x4c, 0x4d),
    (0x4e, 0x03),
    (0x4f, 0x00),
    (0x69, 0x02),
    (0x6a, 0x00),
    (0x70, 0x80),
    (0x76, 0x0c),
    (0x77, 0x0c),
    (0x78, 0x02),
    (0x79, 0x00),
    (0x80, 0x00),
    (0x82, 0x00),
    (0xa0, 0x08),
    (0xa2, 0x00),
    (0xa3, 0x00),
    (0xa4, 0x00),
    (0xa5, 0x00),
    (0xa6, 0x00),
    (0xa7, 0x00),
    (0xa8, 0x0f),
    (0xaa, 0x00),
    (0xab, 0x00),
    (0xac, 0x00),
    (0xae, 0x00),
];

/// Told `(pirq, route)` whenever the effective route of PIRQ `pirq` (0-3 for A-D) changes; `None`
/// means the PIRQ drives no ISA IRQ (Xen's `set_pci_link_route` takes 0 for that).
pub type PirqObserver = Box<dyn Fn(u8, Option<u8>) + Send>;

/// The observer that tells `service` of every route change (KVM re-routes its INTx wires, Xen
/// forwards `set_pci_link_route`).
pub fn observer_for(service: std::sync::Arc<dyn crate::interrupt::InterruptService>) -> PirqObserver {
    Box::new(move |pirq, irq| service.pirq_routed(pirq, irq))
}

/// The ISA IRQs a PIRQ cannot be routed to: 0 (timer), 1 (keyboard), 2 (cascade), 8 (RTC) and 13
/// (FPU error) are reserved in PIRQRC (82371SB section 2.2.10), so such a value routes nowhere.
fn valid_isa_irq(irq: u8) -> bool {
    irq <= 15 && !matches!(irq, 0..=2 | 8 | 13)
}

/// Which PIRQ (0-3 = PIRQA#-PIRQD#) the INTx pin `pin` (1-4 = INTA#-INTD#) of a device in `slot`
/// drives on the i440FX/PIIX3 board as QEMU's `pc` machine wires it: the board rotates the four
/// lines by slot so that the INTA# of neighbouring slots land on different PIRQs,
/// `pirq = (slot - 1 + pin - 1) mod 4` (QEMU `pci_slot_get_pirq`; SeaBIOS's
/// `piix_pci_slot_get_irq` and our ACPI `_PRT` describe the same). This is the KVM machine's
/// routing; under Xen the hypervisor routes INTx itself with its own rotation
/// (`(slot + pin - 1) mod 4`, `hvm_pci_intx_link`) and hvmloader's tables describe that.
/// Returns `None` for pin 0 (no interrupt) or a pin above 4.
pub fn intx_pirq(slot: u8, pin: u8) -> Option<u8> {
    if !(1..=4).contains(&pin) {
        return None;
    }
    // slot - 1 + pin - 1, kept non-negative for slot 0 by adding 4.
    Some(((slot as u16 + pin as u16 + 2) % 4) as u8)
}

/// The PIIX3 ISA bridge function.
pub struct Piix3 {
    function: PciFunction,
    observer: Option<PirqObserver>,
    /// The routes as last reported to the observer.
    routes: [Option<u8>; PIRQ_COUNT as usize],
}

impl std::fmt::Debug for Piix3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piix3").field("config", self.function.config()).field("routes", &self.pirq_routes()).finish()
    }
}

impl Default for Piix3 {
    fn default() -> Self {
        Self::new()
    }
}

impl Piix3 {
    pub fn new() -> Self {
        let mut function = PciFunction::new(
            PciIds {
                vendor_id: PIIX3_VENDOR_ID,
                device_id: PIIX3_DEVICE_ID,
                class: 0x06,    // bridge
                subclass: 0x01, // ISA bridge
                // Functions 1 (IDE) and 3 (PIIX4 ACPI in this machine) follow.
                multifunction: true,
                ..Default::default()
            },
            None,
            PciResources::none(),
        );
        let config = function.config_mut();
        config.set_status_bits(STATUS_DEVSEL_MEDIUM);
        for pirq in 0..PIRQ_COUNT {
            config.set_u8(PIRQRC + pirq, PIRQRC_DISABLE);
            config.set_writable_u8(PIRQRC + pirq, PIRQRC_WRITABLE);
        }
        for &(offset, reset) in STORAGE_REGISTERS {
            config.set_u8(offset, reset);
            config.set_writable_u8(offset, 0xff);
        }
        Piix3 { function, observer: None, routes: [None; PIRQ_COUNT as usize] }
    }

    /// Installs the observer told of every PIRQ route change from now on (replacing any previous
    /// one). It runs with the function locked: it must not access this function.
    pub fn set_pirq_observer(&mut self, observer: PirqObserver) {
        self.observer = Some(observer);
    }

    /// The ISA IRQ PIRQ `pirq` (0-3 for A-D) drives, or `None` when its routing is disabled, the
    /// programmed IRQ is reserved, or `pirq` is not 0-3.
    pub fn pirq_route(&self, pirq: u8) -> Option<u8> {
        if pirq >= PIRQ_COUNT {
            return None;
        }
        let v = self.function.config().read_u8(PIRQRC + pirq);
        let irq = v & PIRQRC_IRQ_MASK;
        (v & PIRQRC_DISABLE == 0 && valid_isa_irq(irq)).then_some(irq)
    }

    pub fn pirq_routes(&self) -> [Option<u8>; PIRQ_COUNT as usize] {
        [0, 1, 2, 3].map(|p| self.pirq_route(p))
    }
}

impl PciFunctionDevice for Piix3 {
    fn function(&self) -> &PciFunction {
        &self.function
    }
    fn function_mut(&mut self) -> &mut PciFunction {
        &mut self.function
    }

    fn config_written(&mut self, _offset: u16, _data: &[u8]) {
        let after = self.pirq_routes();
        let before = std::mem::replace(&mut self.routes, after);
        if let Some(observer) = &self.observer {
            for (pirq, (old, new)) in before.iter().zip(after.iter()).enumerate() {
                if old != new {
                    observer(pirq as u8, *new);
                }
            }
        }
    }
}

impl crate::snapshot::Snapshot for Piix3 {
    const ID: &'static str = "piix3";
    const VERSION: u16 = 1;

    /// Configuration space, with the PIRQ route control registers (QEMU `vmstate_piix3`).
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        self.function.config().save_state(w);
    }

    /// After restoring, the observer hears every PIRQ's route, changed or not: the hypervisor
    /// side (Xen `set_pci_link_route`) must match the restored registers.
    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let state = self.function.config().load_state(r)?;
        r.finish()?;
        self.function.config_mut().apply_state(state);
        self.routes = self.pirq_routes();
        if let Some(observer) = &self.observer {
            for (pirq, route) in self.pirq_routes().iter().enumerate() {
                observer(pirq as u8, *route);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pci::PciDevice;
    use std::sync::{Arc, Mutex};

    type RouteLog = Arc<Mutex<Vec<(u8, Option<u8>)>>>;

    fn recorded() -> (Piix3, RouteLog) {
        let mut d = Piix3::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        d.set_pirq_observer(Box::new(move |pirq, irq| l.lock().unwrap().push((pirq, irq))));
        (d, log)
    }

    #[test]
    fn identifies_as_a_multifunction_isa_bridge() {
        let mut d = Piix3::new();
        let mut b = [0u8; 4];
        d.config_read(0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0x7000_8086);
        d.config_read(8, &mut b);
        assert_eq!(u32::from_le_bytes(b) >> 16, 0x0601);
        d.config_read(0x0c, &mut b);
        assert_eq!(b[2], 0x80);
    }

    #[test]
    fn pirq_routes_start_disabled() {
        let mut d = Piix3::new();
        let mut b = [0u8; 4];
        d.config_read(0x60, &mut b);
        assert_eq!(b, [0x80; 4]);
        assert_eq!(d.pirq_routes(), [None; 4]);
    }

    #[test]
    fn programming_pirq_routes_as_hvmloader_does() {
        let (mut d, log) = recorded();
        // hvmloader writes one byte per PIRQ: 5, 10, 11, 5 (the default PCI ISA IRQ mask).
        for (i, irq) in [5u8, 10, 11, 5].into_iter().enumerate() {
            d.config_write(0x60 + i as u16, &[irq]);
        }
        assert_eq!(d.pirq_routes(), [Some(5), Some(10), Some(11), Some(5)]);
        assert_eq!(*log.lock().unwrap(), vec![(0, Some(5)), (1, Some(10)), (2, Some(11)), (3, Some(5))]);
        log.lock().unwrap().clear();
        // Rewriting the same value tells nobody; disabling and reserved IRQs route nowhere.
        d.config_write(0x60, &[0x05]);
        assert!(log.lock().unwrap().is_empty());
        d.config_write(0x60, &0x0d08_0b85u32.to_le_bytes());
        assert_eq!(d.pirq_routes(), [None, Some(11), None, None]);
        assert_eq!(*log.lock().unwrap(), vec![(0, None), (1, Some(11)), (2, None), (3, None)]);
        // Reserved bits 6:4 read zero.
        let mut b = [0u8; 1];
        d.config_write(0x61, &[0x7b]);
        d.config_read(0x61, &mut b);
        assert_eq!(b[0], 0x0b);
        for irq in [0u8, 1, 2, 8, 13] {
            d.config_write(0x62, &[irq]);
            assert_eq!(d.pirq_route(2), None, "IRQ {irq} is reserved");
        }
        assert_eq!(d.pirq_route(4), None);
    }

    #[test]
    fn slot_pins_rotate_over_the_four_pirqs() {
        // Slot 1 INTA (the PIIX3 IDE/ACPI functions) is PIRQA; slot 2 INTA PIRQB, slot 3 INTA PIRQC.
        assert_eq!(intx_pirq(1, 1), Some(0));
        assert_eq!(intx_pirq(2, 1), Some(1));
        assert_eq!(intx_pirq(3, 1), Some(2));
        assert_eq!(intx_pirq(4, 1), Some(3));
        assert_eq!(intx_pirq(5, 1), Some(0));
        assert_eq!(intx_pirq(3, 2), Some(3));
        assert_eq!(intx_pirq(0, 1), Some(3));
        assert_eq!(intx_pirq(31, 4), Some(1));
        assert_eq!(intx_pirq(255, 4), Some(1));
        assert_eq!(intx_pirq(2, 0), None);
        assert_eq!(intx_pirq(2, 5), None);
    }
}

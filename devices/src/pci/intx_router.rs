//! PCI INTx routing of the i440FX/PIIX3 board, for hypervisors that leave it to the device model
//! (KVM; Xen routes INTx itself from the link routes we forward).
//!
//! On the board each slot's four pins are rotated onto the PIIX3's four PIRQ lines
//! ([`intx_pirq`]), and each PIRQ drives the ISA IRQ its route control register (PIRQRC,
//! 82371SB section 2.2.10) names, or nothing while routing is disabled. Both steps are
//! wired-ORs: all pins that land on a PIRQ share it, and a PIRQ shares its ISA IRQ with anything
//! else on that IRQ. The guest may rewrite a route at any time (Linux's PCI IRQ router and ACPI
//! `_SRS` do, and firmware does at boot): a PIRQ that is asserted at that moment lets go of the
//! old IRQ and asserts the new one, so no request is lost or left stuck.

use std::sync::{Arc, Mutex};

use crate::chipset::piix3::{intx_pirq, PIRQ_COUNT};
use crate::interrupt::{InterruptLine, IntxPin, SharedLine};

/// ISA IRQs 0-15.
const ISA_IRQS: usize = 16;

/// Makes a new source on ISA IRQ `irq` (the backend's ISA interrupt wires).
pub type IsaIrqFactory = Box<dyn Fn(u8) -> Arc<dyn InterruptLine> + Send + Sync>;

struct RouterState {
    routes: [Option<u8>; PIRQ_COUNT as usize],
    /// The combined level of each PIRQ's pins.
    levels: [bool; PIRQ_COUNT as usize],
    /// Each PIRQ's own source on each ISA IRQ it was ever routed to (made on first use).
    outputs: [[Option<Arc<dyn InterruptLine>>; ISA_IRQS]; PIRQ_COUNT as usize],
}

/// The PIIX3 PIRQ router.
pub struct PirqRouter {
    state: Mutex<RouterState>,
    isa_irq: IsaIrqFactory,
    /// The wired-OR of the pins on each PIRQ.
    pirqs: Mutex<Vec<Arc<SharedLine>>>,
}

impl PirqRouter {
    /// A router with every PIRQ unrouted (the PIIX3's reset state), driving ISA IRQ sources made
    /// by `isa_irq`.
    pub fn new(isa_irq: IsaIrqFactory) -> Arc<Self> {
        let router = Arc::new(PirqRouter {
            state: Mutex::new(RouterState {
                routes: [None; PIRQ_COUNT as usize],
                levels: [false; PIRQ_COUNT as usize],
                outputs: Default::default(),
            }),
            isa_irq,
            pirqs: Mutex::new(Vec::new()),
        });
        let wires = (0..PIRQ_COUNT)
            .map(|pirq| {
                SharedLine::new(Arc::new(PirqWire { router: Arc::downgrade(&router), pirq }) as Arc<dyn InterruptLine>)
            })
            .collect();
        *router.pirqs.lock().unwrap_or_else(|e| e.into_inner()) = wires;
        router
    }

    /// A source on the pin `pin` of a function in slot `slot`.
    pub fn intx(&self, slot: u8, pin: IntxPin) -> Arc<dyn InterruptLine> {
        let pirq = intx_pirq(slot, pin.register()).unwrap_or(0);
        self.pirqs.lock().unwrap_or_else(|e| e.into_inner())[pirq as usize].input()
    }

    /// The ISA IRQ PIRQ `pirq` drives now.
    pub fn route(&self, pirq: u8) -> Option<u8> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).routes.get(pirq as usize).copied().flatten()
    }

    /// Whether any pin on PIRQ `pirq` is asserted.
    pub fn pirq_level(&self, pirq: u8) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).levels.get(pirq as usize).copied().unwrap_or(false)
    }

    /// The guest routed PIRQ `pirq` to `irq` (`None`: disabled). An asserted PIRQ moves its
    /// request from the old IRQ to the new one.
    pub fn set_route(&self, pirq: u8, irq: Option<u8>) {
        let irq = irq.filter(|&i| (i as usize) < ISA_IRQS);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(&old) = s.routes.get(pirq as usize) else { return };
        if old == irq {
            return;
        }
        s.routes[pirq as usize] = irq;
        if s.levels[pirq as usize] {
            if let Some(old) = old {
                self.output(&mut s, pirq, old).set_level(false);
            }
            if let Some(new) = irq {
                self.output(&mut s, pirq, new).set_level(true);
            }
        }
    }

    fn output(&self, s: &mut RouterState, pirq: u8, irq: u8) -> Arc<dyn InterruptLine> {
        s.outputs[pirq as usize][irq as usize].get_or_insert_with(|| (self.isa_irq)(irq)).clone()
    }

    fn pirq_changed(&self, pirq: u8, level: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.levels[pirq as usize] = level;
        if let Some(irq) = s.routes[pirq as usize] {
            self.output(&mut s, pirq, irq).set_level(level);
        }
    }
}

/// The output of one PIRQ's wired-OR, feeding the router.
struct PirqWire {
    router: std::sync::Weak<PirqRouter>,
    pirq: u8,
}

impl InterruptLine for PirqWire {
    fn set_level(&self, asserted: bool) {
        if let Some(router) = self.router.upgrade() {
            router.pirq_changed(self.pirq, asserted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interrupt::RecordingLine;

    /// A router whose ISA IRQs are shared wires with recorded outputs, plus an ISA device's own
    /// source on each.
    fn board() -> (Arc<PirqRouter>, Vec<Arc<RecordingLine>>, Vec<Arc<SharedLine>>) {
        let outs: Vec<Arc<RecordingLine>> = (0..16).map(|_| Arc::new(RecordingLine::default())).collect();
        let wires: Vec<Arc<SharedLine>> =
            outs.iter().map(|o| SharedLine::new(o.clone() as Arc<dyn InterruptLine>)).collect();
        let w = wires.clone();
        (PirqRouter::new(Box::new(move |irq| w[irq as usize].input())), outs, wires)
    }

    #[test]
    fn a_pin_reaches_the_irq_its_pirq_is_routed_to() {
        let (router, irqs, _) = board();
        // Slot 4 INTA is PIRQD (the swizzle); unrouted, nothing is seen.
        let pin = router.intx(4, IntxPin::IntA);
        pin.set_level(true);
        assert!(router.pirq_level(3));
        assert!(irqs.iter().all(|l| !l.level()));
        router.set_route(3, Some(11));
        assert!(irqs[11].level(), "routing an asserted PIRQ asserts its IRQ at once");
        pin.set_level(false);
        assert!(!irqs[11].level());
    }

    #[test]
    fn rerouting_while_asserted_moves_the_request() {
        let (router, irqs, _) = board();
        router.set_route(1, Some(10));
        let ide_like = router.intx(2, IntxPin::IntA); // slot 2 INTA: PIRQB
        ide_like.set_level(true);
        assert!(irqs[10].level());
        // Linux's IRQ router rewrites PIRQRC B to 5 while the line is up.
        router.set_route(1, Some(5));
        assert!(!irqs[10].level(), "the old IRQ is released");
        assert!(irqs[5].level(), "the new IRQ is asserted");
        assert_eq!(irqs[5].rising_edges(), 1);
        // Disabling the route drops it; re-enabling brings it back while still asserted.
        router.set_route(1, None);
        assert!(!irqs[5].level());
        router.set_route(1, Some(5));
        assert!(irqs[5].level());
        ide_like.set_level(false);
        assert!(irqs.iter().all(|l| !l.level()));
    }

    #[test]
    fn shared_pirqs_and_shared_irqs_are_wired_ors() {
        let (router, irqs, wires) = board();
        router.set_route(1, Some(11)); // slot 2 INTA and slot 1 INTB land on PIRQB
        router.set_route(2, Some(11)); // PIRQC also on IRQ 11
        let a = router.intx(2, IntxPin::IntA);
        let b = router.intx(1, IntxPin::IntB);
        let c = router.intx(3, IntxPin::IntA);
        let isa = wires[11].input(); // an ISA device on IRQ 11 too
        a.set_level(true);
        b.set_level(true);
        c.set_level(true);
        isa.set_level(true);
        a.set_level(false);
        c.set_level(false);
        isa.set_level(false);
        assert!(irqs[11].level(), "b still holds PIRQB, and PIRQB holds IRQ 11");
        // Moving PIRQC away while it is idle changes nothing on IRQ 11.
        router.set_route(2, Some(10));
        assert!(irqs[11].level() && !irqs[10].level());
        b.set_level(false);
        assert!(!irqs[11].level());
        assert_eq!(irqs[11].rising_edges(), 1);
    }

    #[test]
    fn out_of_range_routes_and_pirqs_are_ignored() {
        let (router, irqs, _) = board();
        router.set_route(7, Some(5));
        router.set_route(0, Some(200));
        assert_eq!(router.route(0), None);
        let p = router.intx(1, IntxPin::IntA); // PIRQA
        p.set_level(true);
        assert!(irqs.iter().all(|l| !l.level()));
    }
}

//! The i440FX/PIIX3 PC, assembled once: [`build_pc`] makes the machine the binary runs (on KVM and
//! on Xen), the fuzzers fuzz and the tests test, from the fixed layout in [`layout`] and what
//! the hypervisor backend provides ([`Platform`]). Further devices attach through the returned
//! [`DeviceBuilder`], which hands out PCI slots, interrupts and DMA memory and keeps the list of
//! devices that save/restore walks.

pub mod layout;

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::bus::{AddressSpace, BusDevice, IoBus};
use crate::chipset::{i440fx::I440fx, piix3, piix3::Piix3, piix4_pm};
use crate::clock::Clock;
use crate::display::{SharedDisplay, VramService};
use crate::interrupt::{InterruptService, IntxPin};
use crate::legacy::{cmos::Cmos, debug_port, i8042::I8042, reset, serial::Serial};
use crate::memory::GuestMemory;
use crate::pci::function::PciResources;
use crate::pci::{PciAddress, PciDevice};
use crate::snapshot::DeviceState;
use crate::storage::ide::{IdeDriveConfig, IdeHandle, Piix3Ide, LEGACY_PORT_RANGES};
use crate::timer::TimerService;
use crate::vm_control::VmControl;
use crate::xen_platform::XenPlatformHost;

/// What the hypervisor backend gives the machine's devices.
#[derive(Clone)]
pub struct Platform {
    /// Every interrupt line and MSI sink (KVM: in-kernel irqchip with our PIRQ routing; Xen:
    /// DMOPs), and where PIIX3 PIRQ route changes go.
    pub interrupts: Arc<dyn InterruptService>,
    /// Power-off and reset requests.
    pub control: Arc<dyn VmControl>,
    /// Where devices schedule work outside register accesses (the event loop); its clock is the
    /// devices' time base.
    pub timers: Arc<dyn TimerService>,
    /// Guest RAM for device DMA (dirty-tracked).
    pub dma_memory: Arc<dyn GuestMemory>,
    /// Video memory for display devices: allocated, mapped at BAR0 and dirty-tracked by the
    /// backend ([`crate::display::HostVram`] where the guest never maps it directly).
    pub vram: Arc<dyn VramService>,
}

impl Platform {
    /// The devices' clock: the timer service's, so deadlines and device time agree.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.timers.clock()
    }
}

/// The IDE drives of one boot: `[channel][unit]`.
pub type IdeDrives = [[Option<IdeDriveConfig>; 2]; 2];

/// How this PC is configured.
pub struct PcConfig {
    pub ram_below_4g: u64,
    pub ram_above_4g: u64,
    /// CMOS boot order (`-boot order=`), e.g. "cd".
    pub boot_order: String,
    pub cpus: u32,
    /// Output of COM1, COM2, ... (at most four).
    pub serial_outputs: Vec<Box<dyn Write + Send>>,
    pub ide_drives: IdeDrives,
    /// With Xen's `xenfv` machine: the xen-platform device's host side.
    pub xen_platform: Option<Arc<dyn XenPlatformHost>>,
    /// Where the IDE channels run their bus-master transfers (one worker per channel, off the
    /// vCPU); `None` runs them inline (fuzzers, unit tests).
    pub ide_io_workers: Option<[Arc<dyn crate::storage::worker::IoWorker>; 2]>,
}

/// Why the PC could not be assembled (a configuration the board cannot take).
#[derive(Debug)]
pub enum PcError {
    /// A device's resources collide or are invalid.
    Resource { device: String, why: String },
    /// The IDE drives cannot be attached as configured.
    Ide(String),
    /// `-boot order=` is not one the CMOS can encode.
    BootOrder { order: String, why: String },
    /// More serial ports than the PC has.
    TooManySerialPorts(usize),
}

impl fmt::Display for PcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PcError::Resource { device, why } => write!(f, "machine assembly: {device}: {why}"),
            PcError::Ide(why) => f.write_str(why),
            PcError::BootOrder { order, why } => write!(f, "-boot order={order}: {why}"),
            PcError::TooManySerialPorts(n) => write!(f, "{n} serial ports; the PC has 4 (COM1-COM4)"),
        }
    }
}

impl std::error::Error for PcError {}

/// A device kept for save/restore: its section is `(state_id, instance)`.
#[derive(Clone)]
pub struct SavedDevice {
    pub instance: u32,
    pub device: Arc<Mutex<dyn DeviceState>>,
}

/// What devices are attached through: the bus, the platform's interrupts, DMA memory, power
/// requests and time, a PCI slot allocator, and the list of devices to save and restore.
pub struct DeviceBuilder {
    pub bus: Arc<IoBus>,
    pub platform: Platform,
    used_slots: std::collections::BTreeSet<u8>,
    saved: Vec<SavedDevice>,
    displays: Vec<SharedDisplay>,
}

impl DeviceBuilder {
    /// A builder over an empty bus.
    pub fn new(platform: Platform) -> Self {
        DeviceBuilder {
            bus: Arc::new(IoBus::new()),
            platform,
            used_slots: Default::default(),
            saved: Vec::new(),
            displays: Vec::new(),
        }
    }

    pub fn control(&self) -> Arc<dyn VmControl> {
        self.platform.control.clone()
    }

    /// Marks `slot` as taken by a fixed device.
    pub fn reserve_slot(&mut self, slot: u8) {
        self.used_slots.insert(slot);
    }

    /// The slot a new PCI device gets: `wanted` if free, else the lowest free slot from
    /// [`layout::pci::FIRST_FREE_SLOT`] on.
    fn allocate_slot(&mut self, name: &str, wanted: Option<u8>) -> Result<u8, PcError> {
        let taken =
            |s: u8| PcError::Resource { device: name.into(), why: format!("PCI slot {s:#x} is already in use") };
        let slot = match wanted {
            Some(s) if self.used_slots.contains(&s) => return Err(taken(s)),
            Some(s) => s,
            None => (layout::pci::FIRST_FREE_SLOT..32).find(|s| !self.used_slots.contains(s)).ok_or_else(|| {
                PcError::Resource { device: name.into(), why: "no free PCI slot left on bus 0".into() }
            })?,
        };
        self.used_slots.insert(slot);
        Ok(slot)
    }

    /// What a function at `address` with INTx pin `pin` is wired to.
    pub fn pci_resources(&self, address: PciAddress, pin: IntxPin) -> PciResources {
        PciResources {
            intx: self.platform.interrupts.pci_intx(address, pin),
            msi: self.platform.interrupts.msi(address),
            memory: self.platform.dma_memory.clone(),
        }
    }

    /// Puts an already built PCI function at `address` (fixed board devices).
    pub fn attach_pci<T: PciDevice + 'static>(
        &mut self,
        name: &str,
        address: PciAddress,
        device: Arc<Mutex<T>>,
    ) -> Result<(), PcError> {
        self.used_slots.insert(address.device);
        self.bus.add_pci_device(address, device).map_err(|why| PcError::Resource { device: name.into(), why })
    }

    /// Builds a PCI function with `make` in `slot` (or the next free one), attaches it to bus 0
    /// and registers it for save/restore. Its pin is INTA# (single-function devices use INTA#).
    pub fn add_pci_function<T>(
        &mut self,
        name: &str,
        slot: Option<u8>,
        make: impl FnOnce(PciResources) -> T,
    ) -> Result<Arc<Mutex<T>>, PcError>
    where
        T: PciDevice + DeviceState + 'static,
    {
        self.try_add_pci_function(name, slot, |r| Ok::<T, std::convert::Infallible>(make(r)))
    }

    /// [`DeviceBuilder::add_pci_function`] for a device whose construction can fail.
    pub fn try_add_pci_function<T, E: std::fmt::Display>(
        &mut self,
        name: &str,
        slot: Option<u8>,
        make: impl FnOnce(PciResources) -> Result<T, E>,
    ) -> Result<Arc<Mutex<T>>, PcError>
    where
        T: PciDevice + DeviceState + 'static,
    {
        let slot = self.allocate_slot(name, slot)?;
        let address = PciAddress::new(0, slot, 0);
        let device = make(self.pci_resources(address, IntxPin::IntA))
            .map_err(|e| PcError::Resource { device: format!("{name} at {address}"), why: e.to_string() })?;
        let device = Arc::new(Mutex::new(device));
        self.bus
            .add_pci_device(address, device.clone())
            .map_err(|why| PcError::Resource { device: format!("{name} at {address}"), why })?;
        self.save(device.clone());
        log::debug!("{name} at {address}");
        Ok(device)
    }

    /// Attaches the fixed port range `(base, len)` to `device` (a device with state also calls
    /// [`DeviceBuilder::save`]).
    pub fn add_io<T: BusDevice + 'static>(
        &mut self,
        name: &str,
        (base, len): (u16, u16),
        device: Arc<Mutex<T>>,
    ) -> Result<(), PcError> {
        self.bus
            .insert(AddressSpace::Io, base.into(), len.into(), name, device)
            .map_err(|e| PcError::Resource { device: name.into(), why: e.to_string() })
    }

    /// Attaches the fixed MMIO range `(base, len)` to `device` (the legacy VGA window).
    pub fn add_mmio<T: BusDevice + 'static>(
        &mut self,
        name: &str,
        (base, len): (u64, u64),
        device: Arc<Mutex<T>>,
    ) -> Result<(), PcError> {
        self.bus
            .insert(AddressSpace::Mmio, base, len, name, device)
            .map_err(|e| PcError::Resource { device: name.into(), why: e.to_string() })
    }

    /// Registers a device for save/restore; instances of one state id are numbered in order.
    pub fn save<T: DeviceState + 'static>(&mut self, device: Arc<Mutex<T>>) {
        let id = device.lock().unwrap_or_else(|e| e.into_inner()).state_id();
        let instance =
            self.saved.iter().filter(|d| d.device.lock().unwrap_or_else(|e| e.into_inner()).state_id() == id).count();
        self.saved.push(SavedDevice { instance: instance as u32, device });
    }

    /// The devices to save and restore, in attach order.
    pub fn saved(&self) -> &[SavedDevice] {
        &self.saved
    }

    /// Registers a display for the consoles (VNC, `screendump`); the first one is the primary.
    pub fn add_display(&mut self, display: SharedDisplay) {
        self.displays.push(display);
    }

    /// The displays, primary first.
    pub fn displays(&self) -> &[SharedDisplay] {
        &self.displays
    }
}

/// The assembled board: what the host side feeds (serial input, media changes, the RTC) and the
/// builder for further devices.
pub struct Pc {
    pub serials: Vec<Arc<Mutex<Serial>>>,
    /// The ACPI register block (power button and GPE events come from the host side).
    pub pm: Arc<Mutex<piix4_pm::PmIo>>,
    pub cmos: Arc<Mutex<Cmos>>,
    pub ide: IdeHandle,
    /// The PS/2 keyboard and mouse, where console input goes.
    pub ps2_input: crate::legacy::i8042::Ps2Input,
    pub devices: DeviceBuilder,
}

fn shared<T>(d: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new(d))
}

/// Builds the PC: the i440FX host bridge, the PIIX3 (ISA bridge, IDE, PIIX4-style ACPI PM), the
/// xen-platform device when asked for, and the ISA devices, at the addresses of [`layout`].
pub fn build_pc(config: PcConfig, platform: Platform) -> Result<Pc, PcError> {
    let PcConfig {
        ram_below_4g,
        ram_above_4g,
        boot_order,
        cpus,
        serial_outputs,
        ide_drives,
        xen_platform,
        ide_io_workers,
    } = config;
    if serial_outputs.len() > layout::port::COM.len() {
        return Err(PcError::TooManySerialPorts(serial_outputs.len()));
    }
    let interrupts = platform.interrupts.clone();
    let control = platform.control.clone();
    let clock = platform.clock();
    let mut b = DeviceBuilder::new(platform.clone());

    // PCI functions (PCI 3.0; slot layout as QEMU's xenfv/pc machines).
    let i440fx = shared(I440fx::new());
    b.attach_pci("i440fx", layout::pci::HOST_BRIDGE, i440fx.clone())?;
    b.save(i440fx);
    let mut isa_bridge = Piix3::new();
    isa_bridge.set_pirq_observer(piix3::observer_for(interrupts.clone()));
    let isa_bridge = shared(isa_bridge);
    b.attach_pci("piix3", layout::pci::PIIX3_ISA, isa_bridge.clone())?;
    b.save(isa_bridge);
    let (pm_function, pm_io) = piix4_pm::new(interrupts.isa_irq(layout::irq::SCI), control.clone(), clock.clone());
    b.attach_pci("piix4-pm", layout::pci::PIIX4_PM, pm_function.clone())?;
    b.add_io("piix4-pm", layout::port::PM, pm_io.clone())?;
    b.add_io("piix4-gpe0", layout::port::GPE0, pm_io.clone())?;
    let apm = shared(piix4_pm::ApmControl::new(pm_io.clone()));
    b.add_io("apm", layout::port::SMI_CMD, apm.clone())?;
    b.save(pm_function);
    b.save(pm_io.clone());
    b.save(apm);

    // PIIX3 IDE in legacy mode: ports 0x1f0/0x3f6 and 0x170/0x376, IRQ 14/15, bus master in BAR4.
    let ide_irqs = [layout::irq::IDE_PRIMARY, layout::irq::IDE_SECONDARY].map(|irq| interrupts.isa_irq(irq));
    let mut ide =
        Piix3Ide::new(ide_drives, platform.dma_memory.clone(), ide_irqs).map_err(|e| PcError::Ide(e.to_string()))?;
    if let Some(workers) = ide_io_workers {
        ide.set_io_workers(workers);
    }
    let ide_handle = ide.handle();
    let legacy = ide_handle.legacy_ports();
    for (base, len, name) in LEGACY_PORT_RANGES {
        b.add_io(name, (base as u16, len as u16), legacy.clone())?;
    }
    let ide = shared(ide);
    b.attach_pci("piix3-ide", layout::pci::PIIX3_IDE, ide.clone())?;
    b.save(ide);

    // Xen's platform device in the first free slot (00:02.0 without VGA, as qemu-xen places it)
    // with its fixed ports 0x10-0x1f.
    if let Some(host) = xen_platform {
        let (function, ports) = crate::xen_platform::new(host);
        let slot = b.allocate_slot("xen-platform", None)?;
        b.attach_pci("xen-platform", PciAddress::new(0, slot, 0), function.clone())?;
        b.add_io("xen-platform", layout::port::XEN_PLATFORM, ports)?;
        b.save(function);
    }

    // ISA devices.
    // The RTC arms its own timer for the interrupts the guest enabled.
    let cmos = Cmos::new_shared(&*platform.timers, interrupts.isa_irq(layout::irq::RTC));
    {
        let mut c = cmos.lock().unwrap_or_else(|e| e.into_inner());
        c.set_memory_size(ram_below_4g, ram_above_4g);
        c.set_boot_order(&boot_order)
            .map_err(|e| PcError::BootOrder { order: boot_order.clone(), why: e.to_string() })?;
        c.set_cpu_count(cpus);
    }
    b.add_io("cmos", layout::port::CMOS, cmos.clone())?;
    b.save(cmos.clone());
    let kbd =
        I8042::new(interrupts.isa_irq(layout::irq::KEYBOARD), interrupts.isa_irq(layout::irq::MOUSE), control.clone());
    let i8042 = shared(kbd);
    b.add_io("i8042-data", layout::port::I8042_DATA, i8042.clone())?;
    b.add_io("i8042-cmd", layout::port::I8042_COMMAND, i8042.clone())?;
    b.save(i8042.clone());
    let ps2_input = crate::legacy::i8042::Ps2Input(i8042);
    let port92 = shared(reset::SystemControlPortA::new(control.clone()));
    b.add_io("port92", layout::port::PORT92, port92.clone())?;
    b.save(port92);
    let reset_control = shared(reset::ResetControl::new(control.clone()));
    b.add_io("reset-control", layout::port::RESET_CONTROL, reset_control.clone())?;
    b.save(reset_control);
    b.add_io("debug-console", layout::port::DEBUG_CONSOLE, shared(debug_port::DebugConsole::new(None)))?;
    let mut serials = Vec::new();
    for (i, out) in serial_outputs.into_iter().enumerate() {
        let (base, irq) = layout::port::COM[i];
        let s = shared(Serial::new(base.into(), interrupts.isa_irq(irq), out));
        b.add_io(&format!("com{}", i + 1), (base, layout::port::COM_LEN), s.clone())?;
        b.save(s.clone());
        serials.push(s);
    }
    Ok(Pc { serials, pm: pm_io, cmos, ide: ide_handle, ps2_input, devices: b })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::interrupt::{RecordingInterruptService, RecordingInterrupts};
    use crate::memory::TestMemory;
    use crate::vm_control::RecordingVmControl;

    fn platform(irqs: Arc<RecordingInterrupts>) -> Platform {
        Platform {
            interrupts: Arc::new(RecordingInterruptService(irqs)),
            control: Arc::new(RecordingVmControl::default()),
            timers: crate::timer::ManualTimers::new(Arc::new(ManualClock::new(0))),
            dma_memory: Arc::new(TestMemory::new(1 << 20)),
            vram: Arc::new(crate::display::HostVram),
        }
    }

    fn config() -> PcConfig {
        PcConfig {
            ram_below_4g: 64 << 20,
            ram_above_4g: 0,
            boot_order: "cd".into(),
            cpus: 1,
            serial_outputs: vec![Box::new(std::io::sink())],
            ide_drives: Default::default(),
            xen_platform: None,
            ide_io_workers: None,
        }
    }

    #[test]
    fn the_board_decodes_every_fixed_range_of_the_layout() {
        let pc = build_pc(config(), platform(RecordingInterrupts::new())).unwrap();
        let ranges = pc.devices.bus.ranges(AddressSpace::Io);
        for (base, len) in [
            layout::port::I8042_DATA,
            layout::port::I8042_COMMAND,
            layout::port::CMOS,
            layout::port::PORT92,
            layout::port::SMI_CMD,
            layout::port::DEBUG_CONSOLE,
            layout::port::RESET_CONTROL,
            layout::port::PM,
            layout::port::GPE0,
            (layout::port::COM[0].0, layout::port::COM_LEN),
        ] {
            assert!(ranges.iter().any(|(b, l, _)| *b == base as u64 && *l == len as u64), "{base:#x}+{len} missing");
        }
        let ids: Vec<&str> = pc.devices.saved().iter().map(|d| d.device.lock().unwrap().state_id()).collect();
        assert_eq!(
            ids,
            [
                "i440fx",
                "piix3",
                "piix4-pm",
                "acpi-pm",
                "apm",
                "piix3-ide",
                "mc146818rtc",
                "i8042",
                "port92",
                "piix3-reset-control",
                "serial"
            ],
            "every device with state is saved, in attach order"
        );
    }

    #[test]
    fn the_serial_port_interrupts_on_its_isa_irq() {
        let irqs = RecordingInterrupts::new();
        let pc = build_pc(config(), platform(irqs.clone())).unwrap();
        // THR empty interrupt enabled (IER bit 1), then a byte sent.
        pc.devices.bus.pio_write(0x3f9, &[0x02]);
        pc.devices.bus.pio_write(0x3f8, b"A");
        assert!(irqs.isa_line(layout::irq::COM1_COM3).rising_edges() > 0);
    }

    #[test]
    fn too_many_serial_ports_are_refused() {
        let mut c = config();
        c.serial_outputs = (0..5).map(|_| Box::new(std::io::sink()) as Box<dyn Write + Send>).collect();
        let e = build_pc(c, platform(RecordingInterrupts::new())).err().unwrap();
        assert!(e.to_string().contains("COM1-COM4"), "{e}");
    }
}

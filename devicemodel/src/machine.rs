//! Machine assembly: the i440FX/PIIX3 PC that Xen's hvmloader and Linux expect, built from the
//! hypervisor-agnostic devices, plus the KVM run loop around it.

use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};

use devices::bus::{AddressSpace, IoBus, SharedBusDevice};
use devices::chipset::{i440fx::I440fx, piix3::Piix3, piix4_pm};
use devices::clock::{Clock, HostClock};
use devices::interrupt::InterruptLine;
use devices::legacy::{cmos::Cmos, debug_port, i8042::I8042, reset, serial::Serial};
use devices::memory::GuestMemory;
use devices::pci::PciAddress;
use devices::storage::ide::{IdeDriveConfig, IdeHandle, Piix3Ide, CHANNEL_IRQS, LEGACY_PORT_RANGES, PIIX3_IDE_ADDRESS};
use devices::vm_control::VmControl;
use vm_memory::GuestAddress;

use crate::cli::{Config, MachineKind, SerialBackend};
use crate::guest_ram::{DeviceRam, GuestRam};
use crate::kvm::{cpu::CpuStart, interrupts::KvmIrqLine, KvmVm, RunControl};
use crate::pty::{Pty, PtyWriter};

/// How the machine's devices reach the hypervisor: interrupts, DMA, power requests.
pub struct Wiring {
    /// ISA IRQ (0-15) lines: KVM `KVM_IRQ_LINE`, Xen `set_isa_irq_level`.
    pub isa_irq: Box<dyn Fn(u32) -> Arc<dyn InterruptLine>>,
    pub control: Arc<dyn VmControl>,
    pub clock: Arc<dyn Clock>,
    /// Guest RAM for device DMA (dirty-tracked).
    pub dma_memory: Arc<dyn GuestMemory>,
    /// Told when the guest reroutes a PIIX3 PIRQ (Xen forwards it as `set_pci_link_route`).
    pub pirq_observer: Option<devices::chipset::piix3::PirqObserver>,
    /// With Xen's `xenfv` machine: the xen-platform device's host side.
    pub xen_platform: Option<Arc<dyn devices::xen_platform::XenPlatformHost>>,
    /// `-serial pty` ports' ptys, by serial index.
    pub ptys: Vec<Option<Arc<Pty>>>,
}

/// The IDE drives of one boot: `[channel][unit]`.
pub type IdeDrives = [[Option<IdeDriveConfig>; 2]; 2];

/// Why a guest stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    PowerOff,
    Reset,
    DebugExit(u32),
    /// SIGTERM, SIGINT or SIGHUP.
    Signal,
    Error(String),
}

#[derive(Debug)]
pub struct MachineError(pub String);

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for MachineError {
    fn from(s: String) -> Self {
        MachineError(s)
    }
}

/// ISA IRQs of the PC (fixed by the hardware, and by our DSDT and hvmloader's).
pub mod irq {
    pub const KEYBOARD: u32 = 1;
    pub const COM2_COM4: u32 = 3;
    pub const COM1_COM3: u32 = 4;
    pub const RTC: u32 = 8;
    pub const MOUSE: u32 = 12;
}

const COM_PORTS: [(u16, u32); 4] =
    [(0x3f8, irq::COM1_COM3), (0x2f8, irq::COM2_COM4), (0x3e8, irq::COM1_COM3), (0x2e8, irq::COM2_COM4)];

/// The assembled machine: its dispatch bus and the devices the host side feeds.
pub struct Machine {
    pub bus: Arc<IoBus>,
    /// COM ports, in order, for host-to-guest input.
    pub serials: Vec<Arc<Mutex<Serial>>>,
    pub cmos: Arc<Mutex<Cmos>>,
    pub ide: IdeHandle,
    /// Every device with guest-visible state, for save/restore.
    pub devices: crate::migration::MachineDevices,
}

fn shared<T: devices::bus::BusDevice + 'static>(d: T) -> Arc<Mutex<T>> {
    Arc::new(Mutex::new(d))
}

fn insert(bus: &IoBus, base: u64, len: u64, name: &str, dev: SharedBusDevice) -> Result<(), MachineError> {
    bus.insert(AddressSpace::Io, base, len, name, dev).map_err(|e| MachineError(format!("machine assembly: {e}")))
}

fn serial_output(
    backend: &SerialBackend,
    pty: Option<&Arc<Pty>>,
) -> Result<Box<dyn std::io::Write + Send>, MachineError> {
    Ok(match backend {
        SerialBackend::Pty => match pty {
            Some(p) => Box::new(PtyWriter(p.clone())),
            None => return Err(MachineError("-serial pty: the pty was not opened".into())),
        },
        SerialBackend::Stdio => Box::new(std::io::stdout()),
        SerialBackend::Null => Box::new(std::io::sink()),
        SerialBackend::File(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| MachineError(format!("-serial file:{}: {e}", p.display())))?,
        ),
    })
}

impl Machine {
    pub fn build(cfg: &Config, wiring: Wiring, ide_drives: IdeDrives) -> Result<Machine, MachineError> {
        let Wiring { isa_irq, control, clock, dma_memory, pirq_observer, xen_platform, ptys } = wiring;
        let irq_line = &*isa_irq;
        let bus = Arc::new(IoBus::new());

        // PCI functions (PCI 3.0; slot layout as qemu-xen's xenfv/pc machines).
        let pci_err = |e: String| MachineError(format!("machine assembly: {e}"));
        let i440fx = Arc::new(Mutex::new(I440fx::new()));
        bus.add_pci_device(PciAddress::new(0, 0, 0), i440fx.clone()).map_err(pci_err)?;
        let mut piix3 = Piix3::new();
        if let Some(observer) = pirq_observer {
            piix3.set_pirq_observer(observer);
        }
        let piix3 = Arc::new(Mutex::new(piix3));
        bus.add_pci_device(PciAddress::new(0, 1, 0), piix3.clone()).map_err(pci_err)?;
        let (pm_function, pm_io) = piix4_pm::new(irq_line(piix4_pm::SCI_IRQ as u32), control.clone(), clock.clone());
        bus.add_pci_device(PciAddress::new(0, 1, 3), pm_function.clone()).map_err(pci_err)?;
        insert(&bus, piix4_pm::PM_BASE as u64, piix4_pm::PM_IO_LEN as u64, "piix4-pm", pm_io.clone())?;
        insert(&bus, piix4_pm::GPE0_BLK as u64, piix4_pm::GPE0_BLK_LEN as u64, "piix4-gpe0", pm_io.clone())?;
        let apm = shared(piix4_pm::ApmControl::new(pm_io.clone()));
        insert(&bus, piix4_pm::SMI_CMD_PORT as u64, 2, "apm", apm.clone())?;

        // PIIX3 IDE in legacy mode: ports 0x1f0/0x3f6 and 0x170/0x376, IRQ 14/15, bus master in BAR4.
        let mut ide = Piix3Ide::new(ide_drives, dma_memory, CHANNEL_IRQS.map(|irq| irq_line(irq as u32)))
            .map_err(|e| MachineError(e.to_string()))?;
        // Bus-master transfers run on one I/O thread per channel, off the vCPU.
        let io = |n: usize| -> Result<Arc<dyn devices::storage::worker::IoWorker>, MachineError> {
            Ok(crate::block::IoThread::spawn(&format!("ide{n}-io"))
                .map_err(|e| MachineError(format!("I/O thread: {e}")))?)
        };
        ide.set_io_workers([io(0)?, io(1)?]);
        let ide_handle = ide.handle();
        let legacy = ide_handle.legacy_ports();
        for (base, len, name) in LEGACY_PORT_RANGES {
            insert(&bus, base, len, name, legacy.clone())?;
        }
        let ide = Arc::new(Mutex::new(ide));
        bus.add_pci_device(PIIX3_IDE_ADDRESS, ide.clone()).map_err(pci_err)?;

        // Xen's platform device at 00:02.0 (the first free slot, as qemu-xen places it without VGA)
        // with its fixed ports 0x10-0x1f.
        let mut platform = None;
        if let (MachineKind::XenFv { platform_device: true }, Some(host)) = (cfg.machine, xen_platform) {
            let (function, ports) = devices::xen_platform::new(host);
            platform = Some(function.clone());
            bus.add_pci_device(PciAddress::new(0, 2, 0), function).map_err(pci_err)?;
            let base = devices::xen_platform::FIXED_IO_BASE as u64;
            insert(&bus, base, devices::xen_platform::FIXED_IO_LEN as u64, "xen-platform", ports)?;
        }

        // ISA devices.
        let cmos = shared(Cmos::new(clock.clone(), irq_line(irq::RTC)));
        {
            let mut c = cmos.lock().unwrap();
            let below_4g = cfg.mem_size.min(firmware::layout::PCI_HOLE_START);
            c.set_memory_size(below_4g, cfg.mem_size - below_4g);
            c.set_boot_order(&cfg.boot_order)
                .map_err(|e| MachineError(format!("-boot order={}: {e}", cfg.boot_order)))?;
            c.set_cpu_count(cfg.cpus as u32);
        }
        insert(&bus, 0x70, 2, "cmos", cmos.clone())?;
        let i8042 = shared(I8042::new(irq_line(irq::KEYBOARD), irq_line(irq::MOUSE), control.clone()));
        insert(&bus, 0x60, 1, "i8042-data", i8042.clone())?;
        insert(&bus, 0x64, 1, "i8042-cmd", i8042.clone())?;
        let port92 = shared(reset::SystemControlPortA::new(control.clone()));
        insert(&bus, 0x92, 1, "port92", port92.clone())?;
        let reset_control = shared(reset::ResetControl::new(control.clone()));
        insert(&bus, 0xcf9, 1, "reset-control", reset_control.clone())?;
        insert(&bus, 0xe9, 1, "debug-console", shared(debug_port::DebugConsole::new(None)))?;
        if let Some(de) = &cfg.debug_exit {
            insert(
                &bus,
                de.iobase as u64,
                de.iosize as u64,
                "isa-debug-exit",
                shared(debug_port::DebugExit::new(de.iobase as u64, de.iosize as u64, control.clone())),
            )?;
        }
        let mut serials = Vec::new();
        for (i, backend) in cfg.serials.iter().enumerate() {
            let (base, irq) = COM_PORTS[i];
            let pty = ptys.get(i).and_then(|p| p.as_ref());
            let s = shared(Serial::new(base as u64, irq_line(irq), serial_output(backend, pty)?));
            insert(&bus, base as u64, 8, &format!("com{}", i + 1), s.clone())?;
            serials.push(s);
        }
        let devices = crate::migration::MachineDevices {
            bus: bus.clone(),
            i440fx,
            piix3,
            pm: pm_function,
            acpi: pm_io,
            apm,
            ide,
            xen_platform: platform,
            cmos: cmos.clone(),
            i8042,
            port92,
            reset_control,
            serials: serials.clone(),
            dirty_log: None,
        };
        Ok(Machine { bus, serials, cmos, ide: ide_handle, devices })
    }
}

/// The serial ports host input feeds, by serial index. One reader thread per input (stdin, a
/// pty) serves every boot of the process, so a guest reboot just swaps the targets.
static SERIAL_TARGETS: Mutex<Vec<Option<Arc<Mutex<Serial>>>>> = Mutex::new(Vec::new());

fn feed_serial(index: usize, bytes: &[u8]) {
    let target = SERIAL_TARGETS.lock().unwrap().get(index).cloned().flatten();
    if let Some(s) = target {
        s.lock().unwrap().enqueue_input(bytes);
    }
}

/// Starts the input threads for `-serial stdio` and `-serial pty` ports (once per process).
pub fn start_serial_inputs(cfg: &Config, ptys: &[Option<Arc<Pty>>]) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        for (i, backend) in cfg.serials.iter().enumerate() {
            match backend {
                SerialBackend::Stdio => {
                    let _ = std::thread::Builder::new().name("stdin".into()).spawn(move || {
                        let mut buf = [0u8; 64];
                        let mut stdin = std::io::stdin();
                        while let Ok(n) = stdin.read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            feed_serial(i, &buf[..n]);
                        }
                    });
                }
                SerialBackend::Pty => {
                    if let Some(Some(pty)) = ptys.get(i).cloned() {
                        let _ = std::thread::Builder::new().name(format!("pty{i}")).spawn(move || {
                            let mut buf = [0u8; 64];
                            while let Ok(n) = pty.read_input(&mut buf, 200) {
                                if n > 0 {
                                    feed_serial(i, &buf[..n]);
                                }
                            }
                        });
                    }
                }
                _ => {}
            }
        }
    });
}

/// Points host input at a (re)built machine's serial ports.
pub fn connect_serial_inputs(machine: &Machine) {
    *SERIAL_TARGETS.lock().unwrap() = machine.serials.iter().cloned().map(Some).collect();
}

/// Guest RAM regions: firmware's layout minus the legacy VGA window 0xa0000-0xbffff, which is
/// MMIO on a PC.
fn ram_ranges(mem_size: u64) -> Vec<(GuestAddress, usize)> {
    const VGA_START: u64 = 0xa_0000;
    const VGA_END: u64 = 0xc_0000;
    let mut out = Vec::new();
    for (gpa, len) in firmware::layout::ram_regions(mem_size) {
        let end = gpa + len;
        if gpa < VGA_END && end > VGA_START {
            if gpa < VGA_START {
                out.push((GuestAddress(gpa), (VGA_START - gpa) as usize));
            }
            if end > VGA_END {
                out.push((GuestAddress(VGA_END), (end - VGA_END) as usize));
            }
        } else {
            out.push((GuestAddress(gpa), len as usize));
        }
    }
    out
}

/// Builds the machine on KVM, boots it, and runs it until it stops. `on_built` sees the machine
/// before its vCPUs start (QMP attaches to its devices there).
pub fn run_on_kvm(
    cfg: &Config,
    control: Arc<RunControl>,
    ide_drives: IdeDrives,
    ptys: &[Option<Arc<Pty>>],
    on_built: &dyn Fn(&Machine),
) -> Result<StopReason, MachineError> {
    let ram = Arc::new(
        GuestRam::from_ranges(&ram_ranges(cfg.mem_size))
            .map_err(|e| MachineError(format!("cannot allocate {} MiB of guest RAM: {e}", cfg.mem_size >> 20)))?,
    );
    let mut vm = KvmVm::new(ram.clone())?;
    let vmfd = vm.vm();
    let wiring = Wiring {
        isa_irq: Box::new(move |gsi: u32| -> Arc<dyn InterruptLine> { Arc::new(KvmIrqLine::new(vmfd.clone(), gsi)) }),
        control: control.clone(),
        clock: Arc::new(HostClock::new()),
        dma_memory: Arc::new(DeviceRam::new(ram.clone())),
        pirq_observer: None,
        xen_platform: None,
        ptys: ptys.to_vec(),
    };
    let mut machine = Machine::build(cfg, wiring, ide_drives)?;
    machine.devices.dirty_log = Some(vm.dirty_log());
    on_built(&machine);

    let boot = if let Some(kernel_path) = &cfg.kernel {
        let acpi = firmware::acpi::AcpiConfig { cpus: cfg.cpus, ..Default::default() };
        let rsdp =
            firmware::acpi::write_acpi_tables(&ram, &acpi).map_err(|e| MachineError(format!("ACPI tables: {e}")))?;
        let mut kernel = std::fs::File::open(kernel_path)
            .map_err(|e| MachineError(format!("-kernel {}: {e}", kernel_path.display())))?;
        let mut initrd = match &cfg.initrd {
            Some(p) => Some(std::fs::File::open(p).map_err(|e| MachineError(format!("-initrd {}: {e}", p.display())))?),
            None => None,
        };
        let state = firmware::linux::load_linux(&ram, &mut kernel, initrd.as_mut(), &cfg.append, cfg.mem_size, rsdp)
            .map_err(|e| MachineError(format!("-kernel {}: {e}", kernel_path.display())))?;
        CpuStart::Boot(Box::new(state))
    } else if let Some(bios_path) = &cfg.bios {
        let image =
            std::fs::read(bios_path).map_err(|e| MachineError(format!("-bios {}: {e}", bios_path.display())))?;
        crate::kvm::load_bios(&mut vm, &ram, &image)
            .map_err(|e| MachineError(format!("-bios {}: {e}", bios_path.display())))?;
        CpuStart::Reset
    } else {
        return Err(MachineError("nothing to boot".into()));
    };

    connect_serial_inputs(&machine);
    let cmos = machine.cmos.clone();
    let ticker_control = control.clone();
    // The RTC's periodic, alarm and update-ended interrupts are delivered from this thread.
    let ticker = std::thread::Builder::new()
        .name("rtc".into())
        .spawn(move || {
            while ticker_control.stop_reason().is_none() {
                cmos.lock().unwrap().poll();
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        })
        .map_err(|e| MachineError(format!("cannot start the RTC thread: {e}")))?;
    let reason = vm.run(&machine, control.clone(), boot, cfg.cpus);
    control.stop(StopReason::Signal);
    let _ = ticker.join();
    SERIAL_TARGETS.lock().unwrap().clear();
    reason
}

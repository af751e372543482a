//! Machine assembly: the i440FX/PIIX3 PC that Xen's hvmloader and Linux expect, built from the
//! hypervisor-agnostic devices, plus the KVM run loop around it.

use std::fmt;
use std::io::Read;
use std::sync::{Arc, Mutex};

use devices::bus::IoBus;
use devices::interrupt::InterruptService;
use devices::legacy::{cmos::Cmos, serial::Serial};
use devices::memory::GuestMemory;
use devices::pc::{build_pc, Pc, PcConfig, Platform};
use devices::storage::ide::IdeHandle;
use devices::timer::TimerService;
use devices::vm_control::VmControl;
use vm_memory::GuestAddress;

use crate::cli::{Config, MachineKind, SerialBackend};
use crate::guest_ram::{DeviceRam, GuestRam};
use crate::kvm::{cpu::CpuStart, interrupts::KvmInterrupts, KvmVm, RunControl};
use crate::pty::{Pty, PtyWriter};

/// How the machine's devices reach the hypervisor: interrupts, DMA, power requests.
pub struct Wiring {
    /// Every interrupt line and MSI sink the devices get (KVM: in-kernel irqchip with our PIRQ
    /// routing; Xen: DMOPs), and where PIIX3 PIRQ route changes go.
    pub interrupts: Arc<dyn InterruptService>,
    pub control: Arc<dyn VmControl>,
    /// Where devices schedule work outside register accesses (the event loop).
    pub timers: Arc<dyn TimerService>,
    /// Guest RAM for device DMA (dirty-tracked).
    pub dma_memory: Arc<dyn GuestMemory>,
    /// Video memory for display devices (allocated, mapped at BAR0 and dirty-tracked).
    pub vram: Arc<dyn devices::display::VramService>,
    /// With Xen's `xenfv` machine: the xen-platform device's host side.
    pub xen_platform: Option<Arc<dyn devices::xen_platform::XenPlatformHost>>,
    /// `-serial pty` ports' ptys, by serial index.
    pub ptys: Vec<Option<Arc<Pty>>>,
}

pub use devices::pc::IdeDrives;

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

/// The assembled machine: its dispatch bus and the devices the host side feeds.
pub struct Machine {
    pub bus: Arc<IoBus>,
    /// COM ports, in order, for host-to-guest input.
    pub serials: Vec<Arc<Mutex<Serial>>>,
    pub cmos: Arc<Mutex<Cmos>>,
    pub ide: IdeHandle,
    /// Every device with guest-visible state, for save/restore.
    pub devices: crate::migration::MachineDevices,
    /// What the consoles show (VNC, `screendump`), primary first.
    pub displays: Vec<devices::display::SharedDisplay>,
    /// Where the consoles' keyboard and pointer events go.
    pub input: MachineInput,
}

/// The machine's input devices as the consoles see them (the PS/2 keyboard and mouse today;
/// a USB tablet or Xen vkbd would be an absolute pointer here).
#[derive(Clone)]
pub struct MachineInput {
    pub keyboard: Arc<dyn devices::input::KeyboardInput>,
    pub pointer: Arc<dyn devices::input::PointerInput>,
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
        // QEMU truncates a -serial file: and appends only with the chardev option append=on.
        SerialBackend::File { path, append } => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(*append)
                .truncate(!*append)
                .open(path)
                .map_err(|e| MachineError(format!("serial output file {}: {e}", path.display())))?,
        ),
    })
}

fn ide_io_thread(channel: usize) -> Result<Arc<dyn devices::storage::worker::IoWorker>, MachineError> {
    Ok(crate::block::IoThread::spawn(&format!("ide{channel}-io"))
        .map_err(|e| MachineError(format!("I/O thread: {e}")))?)
}

impl Machine {
    pub fn build(cfg: &Config, wiring: Wiring, ide_drives: IdeDrives) -> Result<Machine, MachineError> {
        let Wiring { interrupts, control, timers, dma_memory, vram, xen_platform, ptys } = wiring;
        let serial_outputs = cfg
            .serials
            .iter()
            .enumerate()
            .map(|(i, backend)| serial_output(backend, ptys.get(i).and_then(|p| p.as_ref())))
            .collect::<Result<Vec<_>, _>>()?;
        let below_4g = cfg.mem_size.min(firmware::layout::PCI_HOLE_START);
        let xen_platform = match cfg.machine {
            MachineKind::XenFv { platform_device: true } => xen_platform,
            _ => None,
        };
        let pc = build_pc(
            PcConfig {
                ram_below_4g: below_4g,
                ram_above_4g: cfg.mem_size - below_4g,
                boot_order: cfg.boot_order.clone(),
                cpus: cfg.cpus.into(),
                serial_outputs,
                ide_drives,
                xen_platform,
                // Bus-master transfers run on one I/O thread per channel, off the vCPU.
                ide_io_workers: Some([ide_io_thread(0)?, ide_io_thread(1)?]),
            },
            Platform { interrupts, control, timers, dma_memory, vram },
        )
        .map_err(|e| MachineError(e.to_string()))?;
        let Pc { serials, cmos, ide, ps2_input, devices: mut builder, .. } = pc;
        // -device NAME,... from the registry, in command-line order.
        crate::registry::attach_all(&cfg.devices, &mut builder).map_err(|e| MachineError(e.to_string()))?;
        let bus = builder.bus.clone();
        let displays = builder.displays().to_vec();
        let devices =
            crate::migration::MachineDevices { bus: bus.clone(), saved: builder.saved().to_vec(), dirty_log: None };
        let input = MachineInput { keyboard: Arc::new(ps2_input.clone()), pointer: Arc::new(ps2_input) };
        Ok(Machine { bus, serials, cmos, ide, devices, displays, input })
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
/// before its vCPUs start (QMP attaches to its devices there); `timers` runs its devices' timers.
pub fn run_on_kvm(
    cfg: &Config,
    timers: Arc<dyn TimerService>,
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
        interrupts: KvmInterrupts::new(vmfd),
        control: control.clone(),
        timers,
        dma_memory: Arc::new(DeviceRam::new(ram.clone())),
        vram: vm.vram_service(),
        xen_platform: None,
        ptys: ptys.to_vec(),
    };
    let mut machine = Machine::build(cfg, wiring, ide_drives)?;
    machine.devices.dirty_log = Some(vm.dirty_log());
    on_built(&machine);

    let boot = if let Some(kernel_path) = &cfg.kernel {
        let acpi = firmware::acpi::AcpiConfig { cpus: cfg.cpus, ..Default::default() };
        // We are the firmware: route the PIIX3 PIRQs as our ACPI _PRT and MADT say (SeaBIOS and
        // hvmloader program the same registers when they boot the guest).
        for (pirq, irq) in acpi.pirq_irqs.iter().enumerate() {
            let offset = u16::from(devices::chipset::piix3::PIRQRC) + pirq as u16;
            machine.bus.pci_config_write(devices::chipset::piix3::PIIX3_ADDRESS, offset, &[*irq]);
        }
        let rsdp =
            firmware::acpi::write_acpi_tables(&ram, &acpi).map_err(|e| MachineError(format!("ACPI tables: {e}")))?;
        let boot =
            firmware::linux::KernelBoot { kernel: kernel_path, initrd: cfg.initrd.as_deref(), cmdline: &cfg.append };
        let state = firmware::linux::load_kernel(&ram, &boot, cfg.mem_size, rsdp)
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
    let reason = vm.run(&machine, control.clone(), boot, cfg.cpus);
    control.stop(StopReason::Signal);
    SERIAL_TARGETS.lock().unwrap().clear();
    reason
}

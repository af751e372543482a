//! The command line, in QEMU's syntax: the same command runs on our binary and on
//! `qemu-system-x86_64`, which is how libxl drives us and how we benchmark side by side.
//!
//! Options we do not know, or know but do not implement, are refused with a message that names
//! the option; nothing is silently ignored.

use std::fmt;
use std::path::PathBuf;

use crate::qmp::{ChardevBackend, ChardevSpec, ListenerSpec, MonSpec};

pub const USAGE: &str = "\
usage: devicemodel [options]

A memory-safe device model for Xen HVM guests; also runs guests directly on KVM.
Options use QEMU's syntax (one or two leading dashes).

Machine:
  -accel kvm | -enable-kvm       run the guest on KVM (the default)
  -machine pc[,accel=kvm] | -M pc  the i440FX/PIIX3 PC (pc-i440fx-* aliases accepted)
  -m SIZE                        guest RAM (default 128M; suffixes K, M, G, T; plain numbers are MiB)
  -smp N[,maxcpus=N][,sockets=..,cores=..,threads=..]  number of vCPUs
  -cpu host|max                  vCPUs see the host's CPUID as KVM supports it
Boot:
  -kernel FILE                   bzImage, multiboot v1 image, or ELF kernel (64- or 32-bit)
                                 with a PVH entry (an uncompressed vmlinux)
  -initrd FILE                   initial ramdisk for -kernel; for a multiboot kernel, the
                                 modules: -initrd 'FILE1 ARGS,FILE2' (,, for a comma)
  -append CMDLINE                kernel command line for -kernel
  -bios FILE                     firmware image (SeaBIOS bios.bin) mapped below 4 GiB
  -boot order=DRIVES             boot order for the firmware (c disk, d CD-ROM, n network)
Devices and I/O:
  -serial stdio|pty|file:PATH|null|none|chardev:ID   add a 16550 serial port (COM1, COM2, ...);
                                 file:PATH truncates PATH first, as QEMU does
  -chardev file,id=ID,path=PATH[,append=on|off]  output to a file; with append=on what the file
                                 holds is kept (use it with -serial chardev:ID)
  -nographic                     no display; COM1 on stdio unless -serial is given
  -display none                  no display
  -vga std|cirrus|none           standard VGA (as -device VGA), Cirrus (as -device cirrus-vga), or none
  -vnc HOST:DISPLAY[,password=on][,to=N]  VNC server on port 5900+DISPLAY (to=N: the next
                                 displays up to N when the port is taken; password=on: VNC
                                 authentication, the password set over QMP); -vnc unix:PATH; -vnc none
  -k KEYMAP                      VNC keyboard layout from /usr/share/qemu/keymaps (de, fr, ...):
                                 keysyms are then always mapped through it
  -nodefaults, -no-user-config   accepted (we never add devices you did not ask for)
  -device isa-debug-exit[,iobase=0xf4][,iosize=4]  writing V exits with status (V << 1) | 1
  -device edu[,addr=SLOT]  QEMU's edu test device (1234:11e8; INTx and MSI)
  -device virtio-rng-pci[,addr=SLOT][,vectors=2]  virtio 1.x entropy device (1af4:1044; vectors=0: INTx)
  -device cirrus-vga[,vgamem_mb=4|8|16][,romfile=FILE][,addr=SLOT]  Cirrus CLGD 5446 (xl's default card)
Control:
  -name NAME[,debug-threads=on]  guest name (used in logs)
  -no-shutdown                   on guest power-off, stop the guest but keep running
  -no-reboot                     exit instead of rebooting when the guest resets
  -S                             do not start the vCPUs until a QMP 'cont'
  -qmp unix:PATH,server=on,wait=off   QMP monitor socket
  -chardev socket,id=ID,path=PATH|fd=N,server=on,wait=off  a character device (QMP monitors use it)
  -mon chardev=ID,mode=control   a QMP monitor on a -chardev
Drives:
  -drive file=IMG,if=ide,index=N,media=disk|cdrom,format=raw[,cache=..][,readonly=on]
  -drive if=none,id=ID[,file=IMG],format=raw,readonly=on  with  -device ide-cd|ide-hd,id=DEV,drive=ID,bus=ide.N,unit=M
  -cdrom IMG, -hda/-hdb/-hdc/-hdd IMG   QEMU's shorthands
  -D FILE                        write the log to FILE instead of stderr
  -d ITEMS                       log items: guest_errors, unimp, debug, trace (comma separated)
  -version, --version            print the version and exit
  -h, -help, --help              print this help and exit
";

/// Which machine to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineKind {
    /// The i440FX PC on KVM.
    Pc,
    /// Xen HVM (`-machine xenfv`): the PC plus the xen-platform device; with
    /// `platform_device: false` (`-machine pc,accel=xen`, libxl's xen_platform_pci=0) without it.
    XenFv { platform_device: bool },
    /// `-machine none`: no guest at all, only the QMP monitor (libxl 4.20's capability probe).
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Xen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialBackend {
    Stdio,
    /// A pseudo-terminal; its name is reported by QMP `query-chardev` (libxl's `serial='pty'`).
    Pty,
    /// Guest output to a file: truncated first (`-serial file:PATH`) unless `append`
    /// (`-chardev file,...,append=on`).
    File {
        path: PathBuf,
        append: bool,
    },
    Null,
}

/// `media=` of a drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveMedia {
    Disk,
    Cdrom,
}

/// One `-drive` (or `-cdrom`/`-hda`..`-hdd`), before it is attached to a device position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveSpec {
    /// `id=`; for `if=ide` drives QEMU's generated name (`ide0-hd0`, `ide1-cd0`, ...).
    pub id: String,
    /// The image; `None` is an empty CD-ROM drive.
    pub file: Option<PathBuf>,
    /// `if=ide` with `index=`/`bus=`/`unit=`: the position; `if=none` drives get one from `-device`.
    pub position: Option<(u8, u8)>,
    pub media: DriveMedia,
    pub read_only: bool,
    /// The argument as given, for error messages.
    pub text: String,
}

/// `-device ide-hd` / `-device ide-cd`: a device position and the drive behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeDeviceSpec {
    pub media: DriveMedia,
    /// `id=` (what libxl's QMP eject/change address), if any.
    pub id: Option<String>,
    pub drive: Option<String>,
    pub position: Option<(u8, u8)>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub text: String,
}

/// A resolved IDE position: channel, unit, drive and device identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeAttachment {
    pub channel: u8,
    pub unit: u8,
    pub media: DriveMedia,
    /// The block backend name (`query-block` "device").
    pub drive_id: String,
    /// The device id (`query-block` "qdev"), if the device was given one.
    pub device_id: Option<String>,
    pub file: Option<PathBuf>,
    pub read_only: bool,
    pub model: Option<String>,
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub file: Option<PathBuf>,
    pub guest_errors: bool,
    pub unimp: bool,
    pub debug: bool,
    pub trace: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub mem_size: u64,
    pub cpus: u8,
    pub max_cpus: u8,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub bios: Option<PathBuf>,
    pub boot_order: String,
    pub serials: Vec<SerialBackend>,
    /// `-device NAME,...` for registry devices (`crate::registry`), in command-line order.
    pub devices: Vec<crate::registry::DeviceRequest>,
    pub name: Option<String>,
    pub no_shutdown: bool,
    pub no_reboot: bool,
    pub start_paused: bool,
    /// QMP monitors: `-qmp`, and `-mon chardev=ID,mode=control` on a `-chardev socket`.
    pub qmp: Vec<ListenerSpec>,
    /// Every `-chardev` (the monitor ones included).
    pub chardevs: Vec<ChardevSpec>,
    pub ide: Vec<IdeAttachment>,
    pub machine: MachineKind,
    pub accel: Option<Accel>,
    /// `-xen-domid`: the guest this device model serves.
    pub xen_domid: Option<u16>,
    /// `-xen-domid-restrict`: drop privileges over other domains after setup.
    pub xen_domid_restrict: bool,
    /// `-chroot DIR` / `-run-with chroot=DIR`, `-runas USER|UID:GID` / `-run-with user=`: applied after setup.
    pub chroot: Option<PathBuf>,
    pub runas: Option<String>,
    /// `-incoming fd:N` (restore).
    pub incoming_fd: Option<i32>,
    /// Devices and displays the command line asked for that we do not emulate yet (accepted with
    /// a warning so that a default libxl configuration starts; see README "Command-line policy").
    pub not_emulated: Vec<String>,
    pub log: LogConfig,
    /// `-vnc`: the VNC server's listen address and options (None: `-vnc none` or no `-vnc`).
    pub vnc: Option<crate::vnc::VncConfig>,
    /// `-k`: the VNC keymap (keysyms are then always mapped through it).
    pub keymap: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mem_size: 128 << 20,
            cpus: 1,
            max_cpus: 1,
            kernel: None,
            initrd: None,
            append: String::new(),
            bios: None,
            boot_order: "cd".into(),
            serials: Vec::new(),
            devices: Vec::new(),
            name: None,
            no_shutdown: false,
            no_reboot: false,
            start_paused: false,
            qmp: Vec::new(),
            chardevs: Vec::new(),
            ide: Vec::new(),
            machine: MachineKind::Pc,
            accel: None,
            xen_domid: None,
            xen_domid_restrict: false,
            chroot: None,
            runas: None,
            incoming_fd: None,
            not_emulated: Vec::new(),
            vnc: None,
            keymap: None,
            log: LogConfig { file: None, guest_errors: false, unimp: false, debug: false, trace: false },
        }
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Box<Config>),
    Help,
    Version,
}

/// A command-line error, worded for the person who typed it.
#[derive(Debug, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

fn err<T>(msg: impl Into<String>) -> Result<T, CliError> {
    Err(CliError(msg.into()))
}

/// Splits a QEMU option string `a,b=c,d=e` into (key, value) pairs; a leading bare word is
/// returned with an empty key. `,,` is a literal comma, as in QEMU.
pub fn split_opts(s: &str) -> Vec<(String, String)> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                cur.push(',');
            } else {
                parts.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .enumerate()
        .filter(|(i, p)| !(p.is_empty() && *i > 0))
        .map(|(i, p)| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None if i == 0 => (String::new(), p),
            None => (p, "on".to_string()),
        })
        .collect()
}

/// Parses a size like QEMU's `-m`: a plain number is MiB; suffixes K, M, G, T (case-insensitive,
/// optional trailing B).
pub fn parse_mem_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let t = s.strip_suffix(['b', 'B']).filter(|t| t.ends_with(|c: char| c.is_ascii_alphabetic())).unwrap_or(s);
    let (num, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        't' | 'T' => (&t[..t.len() - 1], 1 << 40),
        c if c.is_ascii_digit() => (t, 1 << 20),
        _ => return None,
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult);
    }
    let bytes = num.parse::<f64>().ok()? * mult as f64;
    // Reject what does not fit rather than letting the cast saturate.
    (bytes.is_finite() && bytes > 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn parse_int(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

const MAX_CPUS: u64 = 64;
const MIN_MEM: u64 = 8 << 20;

fn parse_smp(v: &str) -> Result<(u8, u8), CliError> {
    let mut cpus = None;
    let mut max = None;
    let mut topo = 1u64;
    let mut have_topo = false;
    for (k, val) in split_opts(v) {
        let n = parse_int(&val).ok_or_else(|| CliError(format!("-smp: '{val}' is not a number")))?;
        match k.as_str() {
            "" | "cpus" => cpus = Some(n),
            "maxcpus" => max = Some(n),
            "sockets" | "cores" | "threads" | "dies" => {
                topo = topo.saturating_mul(n);
                have_topo = true;
            }
            other => {
                return err(format!("-smp: unknown property '{other}' (use cpus, maxcpus, sockets, cores, threads)"))
            }
        }
    }
    let cpus = cpus.unwrap_or(if have_topo { topo } else { 1 });
    let max = max.unwrap_or(cpus);
    if cpus == 0 || cpus > MAX_CPUS || max < cpus || max > MAX_CPUS {
        return err(format!("-smp {v}: need 1 <= cpus <= maxcpus <= {MAX_CPUS}"));
    }
    Ok((cpus as u8, max as u8))
}

fn parse_serial(v: &str) -> Result<Option<SerialBackend>, CliError> {
    Ok(Some(match v {
        "stdio" | "mon:stdio" => SerialBackend::Stdio,
        "null" => SerialBackend::Null,
        "pty" => SerialBackend::Pty,
        "none" => return Ok(None),
        _ => match v.strip_prefix("file:") {
            Some(p) if !p.is_empty() => SerialBackend::File { path: PathBuf::from(p), append: false },
            _ => {
                return err(format!(
                    "-serial {v}: unsupported serial backend (use stdio, pty, file:PATH, null, none or chardev:ID)"
                ))
            }
        },
    }))
}

/// Takes QEMU's `append` option out of a `-chardev file,...` value: the chardev parser shared
/// with the monitors does not know it, and only serial ports use it. Returns the value without
/// it (`,,` escapes kept) and the flag.
fn take_file_append(v: &str) -> Result<(String, bool), CliError> {
    let mut items: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' && chars.peek() == Some(&',') {
            chars.next();
            cur.push_str(",,");
        } else if c == ',' {
            items.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    items.push(cur);
    if items.first().map(String::as_str) != Some("file") && items.first().map(String::as_str) != Some("backend=file") {
        return Ok((v.to_string(), false));
    }
    let mut append = false;
    let mut rest = Vec::with_capacity(items.len());
    for item in items {
        match item.split_once('=') {
            Some(("append", val)) => append = parse_bool(&format!("-chardev {v}"), "append", val)?,
            None if item == "append" => append = true,
            _ => rest.push(item),
        }
    }
    Ok((rest.join(","), append))
}

/// What `-serial chardev:ID` connects the port to.
fn serial_on_chardev(
    id: &str,
    chardevs: &[ChardevSpec],
    appends: &[(String, bool)],
) -> Result<SerialBackend, CliError> {
    let Some(c) = chardevs.iter().find(|c| c.id == id) else {
        return err(format!("-serial chardev:{id}: no -chardev has id '{id}'"));
    };
    Ok(match &c.backend {
        ChardevBackend::File { path } => {
            SerialBackend::File { path: path.clone(), append: appends.iter().any(|(a, on)| a == id && *on) }
        }
        ChardevBackend::Stdio => SerialBackend::Stdio,
        ChardevBackend::Pty => SerialBackend::Pty,
        ChardevBackend::Null => SerialBackend::Null,
        _ => {
            return err(format!(
                "-serial chardev:{id}: a serial port on this kind of chardev is not supported (use a file, stdio, \
                 pty or null chardev)"
            ))
        }
    })
}

fn parse_machine(v: &str, cfg: &mut Config) -> Result<(), CliError> {
    let mut accel = None;
    let mut kind = MachineKind::Pc;
    for (k, val) in split_opts(v) {
        match k.as_str() {
            "" | "type" => match val.as_str() {
                "pc" => kind = MachineKind::Pc,
                t if t.starts_with("pc-i440fx") => kind = MachineKind::Pc,
                "xenfv" | "xenfv-4.2" | "xenfv-3.1" => kind = MachineKind::XenFv { platform_device: true },
                "none" => kind = MachineKind::None,
                "xenpv" => {
                    return err("-machine xenpv: the PV console/backend role for stub domains is not supported; leave device_model_override unset for the stub domain's dom0 helper")
                }
                other => return err(format!("-machine {other}: unsupported machine type (supported: pc, xenfv, none)")),
            },
            "accel" => accel = Some(check_accel(&val)?),
            "kernel-irqchip" if val == "on" || val == "split" => {}
            "igd-passthru" if val == "on" => return err("-machine igd-passthru=on: IGD passthrough is not supported"),
            "dump-guest-core" | "mem-merge" | "vmport" | "usb" | "hpet" | "smm" | "sata" | "suppress-vmdesc" | "max-ram-below-4g"
            | "igd-passthru" => {
                log::debug!("-machine {k}={val} accepted; it does not change this machine");
            }
            other => return err(format!("-machine: unsupported property '{other}'")),
        }
    }
    if kind == MachineKind::Pc && accel == Some(Accel::Xen) {
        // libxl's xen_platform_pci=0 form.
        kind = MachineKind::XenFv { platform_device: false };
    }
    if let MachineKind::XenFv { .. } = kind {
        accel = Some(Accel::Xen);
    }
    cfg.machine = kind;
    if accel.is_some() {
        cfg.accel = accel;
    }
    Ok(())
}

fn check_accel(v: &str) -> Result<Accel, CliError> {
    let name = split_opts(v).into_iter().next().map(|(_, n)| n).unwrap_or_default();
    match name.as_str() {
        "kvm" => Ok(Accel::Kvm),
        "xen" => Ok(Accel::Xen),
        other => {
            err(format!("-accel {other}: unsupported accelerator (this device model runs guests on kvm or serves xen)"))
        }
    }
}

/// Devices libxl may ask for that we do not emulate yet: accepted with a loud warning so a
/// default `xl` configuration starts (the guest runs without them), never silently.
const NOT_YET_EMULATED: [&str; 16] = [
    "qxl-vga",
    "qxl",
    "intel-hda",
    "hda-duplex",
    "hda-micro",
    "hda-output",
    "rtl8139",
    "e1000",
    "virtio-net-pci",
    "piix3-usb-uhci",
    "ich9-usb-ehci1",
    "ich9-usb-uhci1",
    "nec-usb-xhci",
    "usb-tablet",
    "usb-mouse",
    "usb-kbd",
];

fn parse_device(v: &str, cfg: &mut Config, ide_devices: &mut Vec<IdeDeviceSpec>) -> Result<(), CliError> {
    let opts = split_opts(v);
    let driver = opts.first().map(|(_, d)| d.clone()).unwrap_or_default();
    match driver.as_str() {
        "ide-cd" | "ide-hd" | "ide-drive" => {
            let d = if driver == "ide-drive" { "ide-hd" } else { driver.as_str() };
            ide_devices.push(parse_ide_device(d, &opts[1..], v)?);
            Ok(())
        }
        name if crate::registry::find(name).is_some() => {
            let request = crate::registry::DeviceRequest {
                driver: driver.clone(),
                props: opts[1..].to_vec(),
                text: v.to_string(),
            };
            crate::registry::validate(&request).map_err(|e| CliError(e.to_string()))?;
            cfg.devices.push(request);
            Ok(())
        }
        "" => err("-device: missing driver name"),
        other if NOT_YET_EMULATED.contains(&other) || other.starts_with("ich9-usb-uhci") => {
            cfg.not_emulated.push(format!("-device {v}"));
            Ok(())
        }
        "xen-pci-passthrough" | "vfio-pci" => err(format!("-device {driver}: PCI passthrough is not supported yet")),
        other => {
            let names: Vec<&str> = crate::registry::DEVICES.iter().map(|d| d.name).collect();
            err(format!("-device {other}: unsupported device (supported: ide-hd, ide-cd, {})", names.join(", ")))
        }
    }
}

fn parse_bool(opt: &str, key: &str, v: &str) -> Result<bool, CliError> {
    match v {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        _ => err(format!("{opt}: {key}={v}: expected on or off")),
    }
}

/// Image formats libxl may pass that we cannot read yet.
const UNSUPPORTED_FORMATS: [&str; 6] = ["qcow", "qcow2", "vpc", "qed", "vmdk", "vdi"];

fn parse_drive(v: &str) -> Result<(DriveSpec, bool), CliError> {
    let mut file = None;
    let mut id = None;
    let mut interface = "ide".to_string();
    let (mut index, mut bus, mut unit) = (None, None, None);
    let mut media = DriveMedia::Disk;
    let mut read_only = false;
    let opt = format!("-drive {v}");
    for (k, val) in split_opts(v) {
        let num = |val: &str| parse_int(val).ok_or_else(|| CliError(format!("{opt}: {k}={val} is not a number")));
        match k.as_str() {
            "file" => file = (!val.is_empty()).then(|| PathBuf::from(&val)),
            "id" => id = Some(val),
            "if" => interface = val,
            "index" => index = Some(num(&val)?),
            "bus" => bus = Some(num(&val)?),
            "unit" => unit = Some(num(&val)?),
            "media" => {
                media = match val.as_str() {
                    "disk" => DriveMedia::Disk,
                    "cdrom" => DriveMedia::Cdrom,
                    _ => return err(format!("{opt}: media={val}: expected disk or cdrom")),
                }
            }
            "format" => {
                if UNSUPPORTED_FORMATS.contains(&val.as_str()) {
                    let f = file.as_ref().map(|f: &PathBuf| f.display().to_string()).unwrap_or_default();
                    return err(format!(
                        "{opt}: image format '{val}' of '{f}' is not supported yet; convert it with `qemu-img convert -O raw` and use format=raw"
                    ));
                }
                if val != "raw" && val != "host_device" && val != "file" {
                    return err(format!("{opt}: unknown image format '{val}' (supported: raw)"));
                }
            }
            "readonly" | "read-only" => read_only = parse_bool(&opt, &k, &val)?,
            "cache" => {
                if !matches!(val.as_str(), "writeback" | "none" | "writethrough" | "directsync" | "unsafe") {
                    return err(format!("{opt}: cache={val}: unknown cache mode"));
                }
            }
            "aio" | "discard" | "detect-zeroes" | "werror" | "rerror" | "copy-on-read" | "auto-read-only"
            | "node-name" => {}
            "snapshot" if val == "off" => {}
            _ => return err(format!("{opt}: unsupported drive property '{k}'")),
        }
    }
    let position = match interface.as_str() {
        "ide" => {
            let pos = match (index, bus, unit) {
                (Some(i), None, None) if i < 4 => Some(((i / 2) as u8, (i % 2) as u8)),
                (Some(i), None, None) => return err(format!("{opt}: index={i}: IDE has 4 positions, 0-3")),
                (None, Some(b), Some(u)) if b < 2 && u < 2 => Some((b as u8, u as u8)),
                (None, Some(b), None) if b < 2 => Some((b as u8, 0)),
                (None, None, None) => None,
                _ => return err(format!("{opt}: bus= must be 0-1 and unit= 0-1 (or use index=0-3, not both)")),
            };
            pos
        }
        "none" => None,
        other => {
            return err(format!(
                "{opt}: if={other}: unsupported interface (use if=ide, or if=none with -device ide-hd/ide-cd)"
            ))
        }
    };
    if media == DriveMedia::Cdrom {
        read_only = true;
    }
    let is_ide = interface == "ide";
    if !is_ide && id.is_none() {
        return err(format!("{opt}: a drive with if=none needs an id= for -device ...,drive=ID"));
    }
    if file.is_none() && media == DriveMedia::Disk && is_ide {
        return err(format!("{opt}: a disk needs file=IMAGE"));
    }
    Ok((DriveSpec { id: id.unwrap_or_default(), file, position, media, read_only, text: v.to_string() }, is_ide))
}

fn parse_ide_device(driver: &str, opts: &[(String, String)], text: &str) -> Result<IdeDeviceSpec, CliError> {
    let media = if driver == "ide-cd" { DriveMedia::Cdrom } else { DriveMedia::Disk };
    let opt = format!("-device {text}");
    let mut dev = IdeDeviceSpec {
        media,
        id: None,
        drive: None,
        position: None,
        model: None,
        serial: None,
        text: text.to_string(),
    };
    let (mut bus, mut unit) = (None, None);
    for (k, val) in opts {
        match k.as_str() {
            "id" => dev.id = Some(val.clone()),
            "drive" => dev.drive = Some(val.clone()),
            "bus" => {
                bus = Some(match val.as_str() {
                    "ide.0" => 0u8,
                    "ide.1" => 1,
                    _ => return err(format!("{opt}: bus={val}: the IDE buses are ide.0 and ide.1")),
                })
            }
            "unit" => {
                unit = Some(match val.as_str() {
                    "0" => 0u8,
                    "1" => 1,
                    _ => return err(format!("{opt}: unit={val}: an IDE bus has units 0 and 1")),
                })
            }
            "model" => dev.model = Some(val.clone()),
            "serial" => dev.serial = Some(val.clone()),
            "bootindex" | "ver" | "wwn" | "discard_granularity" | "logical_block_size" | "physical_block_size" => {}
            _ => return err(format!("{opt}: unsupported property '{k}'")),
        }
    }
    dev.position = match (bus, unit) {
        (Some(b), u) => Some((b, u.unwrap_or(0))),
        (None, Some(u)) => Some((0, u)),
        (None, None) => None,
    };
    Ok(dev)
}

/// Puts every IDE drive at a position, as QEMU does: explicit positions first, then the rest in
/// order into free positions; `-device` entries take their drive from `if=none` drives.
fn resolve_ide(drives: Vec<(DriveSpec, bool)>, devices: Vec<IdeDeviceSpec>) -> Result<Vec<IdeAttachment>, CliError> {
    let mut taken: [[Option<IdeAttachment>; 2]; 2] = Default::default();
    let mut unplaced = Vec::new();
    let mut pool: Vec<DriveSpec> = Vec::new();
    let mut ide_counts = [0u32; 2];
    for (d, is_ide) in drives {
        if !is_ide {
            if pool.iter().any(|p| p.id == d.id) {
                return err(format!("-drive {}: duplicate drive id '{}'", d.text, d.id));
            }
            pool.push(d);
            continue;
        }
        unplaced.push(d);
    }
    let place = |taken: &mut [[Option<IdeAttachment>; 2]; 2], a: IdeAttachment, what: &str| -> Result<(), CliError> {
        let slot = &mut taken[a.channel as usize][a.unit as usize];
        if slot.is_some() {
            return err(format!("{what}: IDE bus {} unit {} is already in use", a.channel, a.unit));
        }
        *slot = Some(a);
        Ok(())
    };
    let attachment = |d: &DriveSpec, (channel, unit): (u8, u8), ids: &mut [u32; 2]| {
        let kind = if d.media == DriveMedia::Cdrom { 1 } else { 0 };
        let drive_id = if d.id.is_empty() {
            let n = ids[kind];
            ids[kind] += 1;
            let _ = n;
            format!("ide{channel}-{}{unit}", if kind == 1 { "cd" } else { "hd" })
        } else {
            d.id.clone()
        };
        IdeAttachment {
            channel,
            unit,
            media: d.media,
            drive_id,
            device_id: None,
            file: d.file.clone(),
            read_only: d.read_only,
            model: None,
            serial: None,
        }
    };
    // Explicit positions first.
    let mut later = Vec::new();
    for d in unplaced {
        match d.position {
            Some(p) => {
                let a = attachment(&d, p, &mut ide_counts);
                place(&mut taken, a, &format!("-drive {}", d.text))?;
            }
            None => later.push(d),
        }
    }
    let mut deferred_devices = Vec::new();
    for dev in devices {
        let what = format!("-device {}", dev.text);
        let drive = match &dev.drive {
            Some(name) => {
                let i = pool
                    .iter()
                    .position(|p| &p.id == name)
                    .ok_or_else(|| CliError(format!("{what}: no -drive with id={name} and if=none")))?;
                pool.remove(i)
            }
            None if dev.media == DriveMedia::Cdrom => DriveSpec {
                id: String::new(),
                file: None,
                position: None,
                media: DriveMedia::Cdrom,
                read_only: true,
                text: dev.text.clone(),
            },
            None => return err(format!("{what}: an IDE disk needs drive=ID")),
        };
        if dev.media == DriveMedia::Disk && drive.file.is_none() {
            return err(format!("{what}: drive '{}' has no file= for a disk", drive.id));
        }
        if dev.media == DriveMedia::Disk && drive.read_only {
            return err(format!(
                "{what}: drive '{}' is read-only, but IDE disks cannot be; use -device ide-cd or readonly=off",
                drive.id
            ));
        }
        let mut drive = drive;
        if dev.media == DriveMedia::Cdrom {
            drive.media = DriveMedia::Cdrom;
            drive.read_only = true;
        }
        match dev.position {
            Some(p) => {
                let mut a = attachment(&drive, p, &mut ide_counts);
                a.device_id = dev.id.clone();
                a.model = dev.model.clone();
                a.serial = dev.serial.clone();
                place(&mut taken, a, &what)?;
            }
            None => deferred_devices.push((dev, drive)),
        }
    }
    if let Some(d) = pool.first() {
        return err(format!("-drive {}: drive '{}' is not used by any -device", d.text, d.id));
    }
    let mut free = (0..4u8).map(|i| (i / 2, i % 2));
    let mut next_free =
        |taken: &[[Option<IdeAttachment>; 2]; 2]| free.find(|&(c, u)| taken[c as usize][u as usize].is_none());
    for d in later {
        let p =
            next_free(&taken).ok_or_else(|| CliError(format!("-drive {}: all 4 IDE positions are in use", d.text)))?;
        let a = attachment(&d, p, &mut ide_counts);
        place(&mut taken, a, &format!("-drive {}", d.text))?;
    }
    for (dev, drive) in deferred_devices {
        let what = format!("-device {}", dev.text);
        let p = next_free(&taken).ok_or_else(|| CliError(format!("{what}: all 4 IDE positions are in use")))?;
        let mut a = attachment(&drive, p, &mut ide_counts);
        a.device_id = dev.id.clone();
        a.model = dev.model.clone();
        a.serial = dev.serial.clone();
        place(&mut taken, a, &what)?;
    }
    Ok(taken.into_iter().flatten().flatten().collect())
}

fn parse_log_items(v: &str, log: &mut LogConfig) -> Result<(), CliError> {
    for item in v.split(',') {
        match item {
            "guest_errors" => log.guest_errors = true,
            "unimp" => log.unimp = true,
            "debug" => log.debug = true,
            "trace" => log.trace = true,
            "help" => return err("log items: guest_errors, unimp, debug, trace"),
            other => return err(format!("-d {other}: unknown log item (use guest_errors, unimp, debug, trace)")),
        }
    }
    Ok(())
}

/// Parses `args` (without argv\[0\]).
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, CliError> {
    let mut cfg = Config::default();
    let mut args = args.into_iter();
    let mut nographic = false;
    let mut serial_given = false;
    // `-serial chardev:ID` ports (index into cfg.serials, id), resolved once every -chardev is
    // known (QEMU accepts them in either order), and the file chardevs' append flags.
    let mut serial_chardevs: Vec<(usize, String)> = Vec::new();
    let mut chardev_appends: Vec<(String, bool)> = Vec::new();
    let mut drives: Vec<(DriveSpec, bool)> = Vec::new();
    let mut ide_devices: Vec<IdeDeviceSpec> = Vec::new();
    let mut mons: Vec<MonSpec> = Vec::new();
    while let Some(arg) = args.next() {
        let Some(opt) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')).filter(|o| !o.is_empty()) else {
            return err(format!("'{arg}': unexpected argument (options start with '-'; see --help)"));
        };
        // `--opt=value` is accepted as QEMU does for long options.
        let (opt, inline) = match opt.split_once('=') {
            Some((o, v)) if arg.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (opt.to_string(), None),
        };
        let mut value = |what: &str| -> Result<String, CliError> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            args.next().ok_or_else(|| CliError(format!("-{opt}: missing {what} (see --help)")))
        };
        match opt.as_str() {
            "h" | "help" => return Ok(Command::Help),
            "version" => return Ok(Command::Version),
            "accel" => cfg.accel = Some(check_accel(&value("accelerator")?)?),
            "enable-kvm" => cfg.accel = Some(Accel::Kvm),
            "xen-domid" => {
                let v = value("domain id")?;
                let id = parse_int(&v).filter(|&d| d > 0 && d < 0x7ff0).ok_or_else(|| CliError(format!("-xen-domid {v}: not a guest domain id (1-32751)")))?;
                cfg.xen_domid = Some(id as u16);
            }
            "xen-domid-restrict" => cfg.xen_domid_restrict = true,
            "xen-attach" => return err("-xen-attach: the PV console/backend role is not supported (it is used for PV guests and stub-domain consoles)"),
            "chroot" => cfg.chroot = Some(PathBuf::from(value("directory")?)),
            "runas" => cfg.runas = Some(value("user")?),
            "run-with" => {
                let v = value("run-with options")?;
                for (k, val) in split_opts(&v) {
                    match k.as_str() {
                        "chroot" => cfg.chroot = Some(PathBuf::from(val)),
                        "user" => cfg.runas = Some(val),
                        "async-teardown" => {}
                        _ => return err(format!("-run-with {v}: unknown property '{k}' (chroot, user)")),
                    }
                }
            }
            "incoming" => {
                let v = value("migration source")?;
                let fd = v.strip_prefix("fd:").and_then(|f| f.parse::<i32>().ok()).filter(|f| *f >= 0);
                match fd {
                    Some(fd) => cfg.incoming_fd = Some(fd),
                    None => return err(format!("-incoming {v}: only fd:N is supported (what libxl passes on restore)")),
                }
            }
            "vnc" => {
                let v = value("VNC display")?;
                cfg.vnc = crate::vnc::VncConfig::parse(&v).map_err(CliError)?;
            }
            "spice" => {
                let v = value("SPICE options")?;
                cfg.not_emulated.push(format!("-spice {v} (no SPICE server yet)"));
            }
            "k" => {
                let v = value("keymap")?;
                // Checked now so a typo fails at start, not at the first key press.
                crate::vnc::keymap::Keymap::load(&v).map_err(CliError)?;
                cfg.keymap = Some(v);
            }
            "usb" => cfg.not_emulated.push("-usb".into()),
            "usbdevice" => {
                let v = value("USB device")?;
                cfg.not_emulated.push(format!("-usbdevice {v}"));
            }
            "net" => {
                let v = value("network")?;
                if v != "none" {
                    return err(format!("-net {v}: only -net none is supported (NICs come with -device/-netdev)"));
                }
            }
            "netdev" => {
                let v = value("network backend")?;
                cfg.not_emulated.push(format!("-netdev {v}"));
            }
            "machine" | "M" => parse_machine(&value("machine type")?, &mut cfg)?,
            "m" => {
                let v = value("memory size")?;
                let size_str = split_opts(&v)
                    .into_iter()
                    .find(|(k, _)| k.is_empty() || k == "size")
                    .map(|(_, s)| s)
                    .unwrap_or_default();
                let size = parse_mem_size(&size_str).ok_or_else(|| CliError(format!("-m {v}: not a memory size (e.g. 256M, 2G)")))?;
                if size < MIN_MEM {
                    return err(format!("-m {v}: at least 8 MiB of guest RAM is needed"));
                }
                if size > (1 << 40) {
                    return err(format!("-m {v}: more than 1 TiB of guest RAM is not supported"));
                }
                cfg.mem_size = size & !0xfff;
            }
            "smp" => (cfg.cpus, cfg.max_cpus) = parse_smp(&value("cpu count")?)?,
            "cpu" => {
                let model = value("cpu model")?;
                let name = split_opts(&model).into_iter().next().map(|(_, n)| n).unwrap_or_default();
                if name != "host" && name != "max" {
                    log::warn!("-cpu {model}: vCPUs see the host's CPUID as KVM supports it, not the '{name}' model");
                }
            }
            "kernel" => cfg.kernel = Some(PathBuf::from(value("kernel image")?)),
            "initrd" => cfg.initrd = Some(PathBuf::from(value("initrd image")?)),
            "append" => cfg.append = value("kernel command line")?,
            "bios" => cfg.bios = Some(PathBuf::from(value("firmware image")?)),
            "boot" => {
                let v = value("boot order")?;
                for (k, val) in split_opts(&v) {
                    match k.as_str() {
                        "" | "order" | "once" => {
                            if !val.chars().all(|c| matches!(c, 'a'..='p')) {
                                return err(format!("-boot {v}: drive letters are a to p"));
                            }
                            cfg.boot_order = val;
                        }
                        "menu" | "strict" | "splash-time" | "reboot-timeout" => {}
                        other => return err(format!("-boot: unknown property '{other}'")),
                    }
                }
            }
            "serial" => {
                serial_given = true;
                let v = value("serial backend")?;
                let backend = match v.strip_prefix("chardev:") {
                    Some(id) => {
                        serial_chardevs.push((cfg.serials.len(), id.to_string()));
                        Some(SerialBackend::Null) // replaced below
                    }
                    None => parse_serial(&v)?,
                };
                if let Some(s) = backend {
                    if cfg.serials.len() >= 4 {
                        return err("-serial: at most 4 serial ports (COM1-COM4)");
                    }
                    cfg.serials.push(s);
                }
            }
            "nographic" => nographic = true,
            "display" => {
                let v = value("display type")?;
                if v != "none" {
                    return err(format!("-display {v}: unsupported display (only 'none' for now)"));
                }
            }
            "vga" => {
                let v = value("VGA type")?;
                match v.as_str() {
                    "none" => {}
                    // QEMU's -vga std is -device VGA with its defaults, and -vga cirrus is
                    // -device cirrus-vga; made with the board (before any -device), so the card
                    // takes the first free slot, 00:02.0.
                    "std" | "cirrus" => {
                        let driver = if v == "std" { "VGA" } else { "cirrus-vga" };
                        cfg.devices.insert(
                            0,
                            crate::registry::DeviceRequest {
                                driver: driver.into(),
                                props: Vec::new(),
                                text: format!("{driver} (from -vga {v})"),
                            },
                        )
                    }
                    _ => return err(format!("-vga {v}: unsupported VGA card (supported: std, cirrus, none)")),
                }
            }
            "nodefaults" | "no-user-config" | "no-hpet" => {}
            "device" => parse_device(&value("device description")?, &mut cfg, &mut ide_devices)?,
            "drive" => drives.push(parse_drive(&value("drive description")?)?),
            "cdrom" => {
                let f = value("CD-ROM image")?;
                drives.push((
                    DriveSpec { id: String::new(), file: Some(PathBuf::from(&f)), position: Some((1, 0)), media: DriveMedia::Cdrom, read_only: true, text: format!("(-cdrom {f})") },
                    true,
                ));
            }
            "hda" | "hdb" | "hdc" | "hdd" => {
                let f = value("disk image")?;
                let i = opt.as_bytes()[2] - b'a';
                drives.push((
                    DriveSpec { id: String::new(), file: Some(PathBuf::from(&f)), position: Some((i / 2, i % 2)), media: DriveMedia::Disk, read_only: false, text: format!("(-{opt} {f})") },
                    true,
                ));
            }
            "chardev" => {
                let (v, append) = take_file_append(&value("character device")?)?;
                let c = crate::qmp::parse_chardev(&v).map_err(|e| CliError(format!("-chardev: {e}")))?;
                chardev_appends.push((c.id.clone(), append));
                if cfg.chardevs.iter().any(|d| d.id == c.id) {
                    return err(format!("-chardev: duplicate id '{}'", c.id));
                }
                cfg.chardevs.push(c);
            }
            "mon" => mons.push(crate::qmp::parse_mon(&value("monitor description")?).map_err(|e| CliError(format!("-mon: {e}")))?),
            "name" => {
                let v = value("guest name")?;
                cfg.name = split_opts(&v).into_iter().find(|(k, _)| k.is_empty() || k == "guest").map(|(_, n)| n);
            }
            "no-shutdown" => cfg.no_shutdown = true,
            "no-reboot" => cfg.no_reboot = true,
            "S" => cfg.start_paused = true,
            "qmp" => cfg.qmp.push(crate::qmp::parse_qmp(&value("QMP socket")?).map_err(|e| CliError(format!("-qmp: {e}")))?),
            "D" => cfg.log.file = Some(PathBuf::from(value("log file")?)),
            "d" => parse_log_items(&value("log items")?, &mut cfg.log)?,
            other => return err(format!("-{other}: unsupported option (see --help for what this device model accepts)")),
        }
    }
    cfg.ide = resolve_ide(drives, ide_devices)?;
    let monitors = crate::qmp::monitor_listeners(&cfg.chardevs, &mons).map_err(|e| CliError(format!("-mon: {e}")))?;
    cfg.qmp.extend(monitors);
    for (index, id) in &serial_chardevs {
        cfg.serials[*index] = serial_on_chardev(id, &cfg.chardevs, &chardev_appends)?;
    }
    for c in &cfg.chardevs {
        let used_by_monitor = mons.iter().any(|m| m.chardev == c.id);
        let used_by_serial = serial_chardevs.iter().any(|(_, id)| *id == c.id);
        if !used_by_monitor && !used_by_serial && !matches!(c.backend, ChardevBackend::Null) {
            cfg.not_emulated.push(format!("-chardev {} (only QMP monitors use character devices so far)", c.id));
        }
    }
    if nographic && !serial_given {
        cfg.serials.push(SerialBackend::Stdio);
    }
    if cfg.kernel.is_none() && (cfg.initrd.is_some() || !cfg.append.is_empty()) {
        return err("-initrd and -append need -kernel");
    }
    if cfg.kernel.is_some() && cfg.bios.is_some() {
        return err("-kernel and -bios cannot be combined yet: use one or the other");
    }
    match (cfg.machine, &cfg.accel) {
        (MachineKind::XenFv { .. }, _) | (_, Some(Accel::Xen)) => {
            if cfg.machine != MachineKind::None && cfg.xen_domid.is_none() {
                return err("-machine xenfv needs -xen-domid DOMID (the HVM guest this device model serves)");
            }
            if cfg.machine == MachineKind::Pc {
                cfg.machine = MachineKind::XenFv { platform_device: false };
            }
            if cfg.kernel.is_some() {
                return err("-kernel with Xen: direct kernel boot through fw_cfg is not supported; boot the guest from a disk or CD-ROM");
            }
        }
        (MachineKind::None, _) => {}
        (MachineKind::Pc, _) => {
            if cfg.xen_domid.is_some() {
                return err("-xen-domid needs -machine xenfv (or -machine pc,accel=xen)");
            }
            if cfg.kernel.is_none() && cfg.bios.is_none() {
                return err("nothing to boot: give -kernel FILE (a Linux vmlinux or bzImage) or -bios FILE (e.g. /usr/share/seabios/bios.bin)");
            }
        }
    }

    Ok(Command::Run(Box::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, CliError> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(c) => Ok(*c),
            other => panic!("expected a run, got {other:?}"),
        }
    }

    #[test]
    fn the_nested_test_command_line_parses() {
        let c = run(&[
            "-accel",
            "kvm",
            "-m",
            "256M",
            "-smp",
            "2",
            "-nodefaults",
            "-display",
            "none",
            "-serial",
            "stdio",
            "-no-reboot",
            "-kernel",
            "/l3/vmlinux",
            "-initrd",
            "/l3/i.cpio",
            "-append",
            "console=ttyS0 quiet",
        ])
        .unwrap();
        assert_eq!(c.mem_size, 256 << 20);
        assert_eq!((c.cpus, c.max_cpus), (2, 2));
        assert_eq!(c.serials, vec![SerialBackend::Stdio]);
        assert!(c.no_reboot);
        assert_eq!(c.append, "console=ttyS0 quiet");
    }

    #[test]
    fn sizes_parse_like_qemu() {
        assert_eq!(parse_mem_size("512"), Some(512 << 20));
        assert_eq!(parse_mem_size("1G"), Some(1 << 30));
        assert_eq!(parse_mem_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_mem_size("64MB"), Some(64 << 20));
        assert_eq!(parse_mem_size("12x"), None);
        assert_eq!(parse_mem_size(""), None);
        assert_eq!(parse_mem_size("99999999999999999999T"), None);
    }

    #[test]
    fn unknown_options_and_missing_values_name_the_option() {
        let e = run(&["-kernel", "k", "-frobnicate"]).unwrap_err();
        assert!(e.0.contains("-frobnicate"), "{e}");
        let e = run(&["-kernel", "k", "-m"]).unwrap_err();
        assert!(e.0.starts_with("-m: missing"), "{e}");
        let e = run(&["-kernel", "k", "-machine", "q35"]).unwrap_err();
        assert!(e.0.contains("q35"), "{e}");
        let e = run(&["-kernel", "k", "-accel", "tcg"]).unwrap_err();
        assert!(e.0.contains("tcg"), "{e}");
        let e = run(&["-m", "1G"]).unwrap_err();
        assert!(e.0.contains("nothing to boot"), "{e}");
        let e = run(&["-kernel", "k", "-smp", "0"]).unwrap_err();
        assert!(e.0.contains("-smp"), "{e}");
    }

    #[test]
    fn qemu_option_forms() {
        let c = run(&[
            "--machine",
            "pc,accel=kvm",
            "-M",
            "pc-i440fx-7.2",
            "-nographic",
            "-bios",
            "/b.bin",
            "-qmp",
            "unix:/tmp/q.sock,server=on,wait=off",
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-name",
            "guest=demo,debug-threads=on",
            "-d",
            "guest_errors,unimp",
            "-D",
            "/tmp/log",
            "-boot",
            "order=dc",
        ])
        .unwrap();
        assert_eq!(c.serials, vec![SerialBackend::Stdio]);
        assert_eq!(c.qmp[0].source, crate::qmp::ListenerSource::Path(PathBuf::from("/tmp/q.sock")));
        assert_eq!(c.devices.len(), 1);
        assert_eq!(
            (c.devices[0].driver.as_str(), c.devices[0].text.as_str()),
            ("isa-debug-exit", "isa-debug-exit,iobase=0xf4,iosize=0x04")
        );
        assert_eq!(c.name.as_deref(), Some("demo"));
        assert!(c.log.guest_errors && c.log.unimp);
        assert_eq!(c.boot_order, "dc");
        assert_eq!(parse(["--version".to_string()]), Ok(Command::Version));
        assert_eq!(parse(["-h".to_string()]), Ok(Command::Help));
    }

    #[test]
    fn libxl_drive_forms_resolve_to_ide_positions() {
        let c = run(&[
            "-kernel",
            "k",
            "-drive",
            "file=/img/disk.raw,if=ide,index=0,media=disk,format=raw,cache=writeback",
            "-drive",
            "if=none,readonly=on,id=ide-5632,file=/img/a.iso,format=raw",
            "-device",
            "ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0",
            "-drive",
            "if=none,readonly=on,id=ide-5696",
            "-device",
            "ide-cd,id=ide-5696,drive=ide-5696,bus=ide.1,unit=1",
        ])
        .unwrap();
        let at = |ch, u| c.ide.iter().find(|a| a.channel == ch && a.unit == u).cloned();
        let disk = at(0, 0).unwrap();
        assert_eq!((disk.media, disk.drive_id.as_str(), disk.read_only), (DriveMedia::Disk, "ide0-hd0", false));
        let cd = at(1, 0).unwrap();
        assert_eq!(cd.device_id.as_deref(), Some("ide-5632"));
        assert_eq!(cd.file, Some(PathBuf::from("/img/a.iso")));
        assert!(cd.read_only && cd.media == DriveMedia::Cdrom);
        let empty = at(1, 1).unwrap();
        assert_eq!(empty.file, None);
        assert!(at(0, 1).is_none());
        let c = run(&["-kernel", "k", "-cdrom", "/x.iso", "-hda", "/d.img"]).unwrap();
        assert_eq!(c.ide.len(), 2);
        assert_eq!(c.ide[1].drive_id, "ide1-cd0");
    }

    #[test]
    fn bad_drives_are_refused_naming_the_drive() {
        let e = run(&["-kernel", "k", "-drive", "file=/v.qcow2,if=ide,index=0,media=disk,format=qcow2"]).unwrap_err();
        assert!(e.0.contains("qcow2") && e.0.contains("/v.qcow2"), "{e}");
        let e =
            run(&["-kernel", "k", "-drive", "file=/a,if=ide,index=1", "-drive", "file=/b,if=ide,index=1"]).unwrap_err();
        assert!(e.0.contains("already in use"), "{e}");
        let e = run(&["-kernel", "k", "-device", "ide-cd,drive=nope"]).unwrap_err();
        assert!(e.0.contains("nope"), "{e}");
        let e = run(&["-kernel", "k", "-drive", "if=none,id=d0,file=/a,readonly=on", "-device", "ide-hd,drive=d0"])
            .unwrap_err();
        assert!(e.0.contains("read-only"), "{e}");
        let e = run(&["-kernel", "k", "-drive", "if=scsi,file=/a"]).unwrap_err();
        assert!(e.0.contains("if=scsi"), "{e}");
    }

    #[test]
    fn the_argv_libxl_4_17_emits_for_an_hvm_guest_parses() {
        let argv = "-xen-domid 7 -no-shutdown \
            -chardev socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-7,server=on,wait=off -mon chardev=libxl-cmd,mode=control \
            -chardev socket,id=libxenstat-cmd,path=/var/run/xen/qmp-libxenstat-7,server=on,wait=off -mon chardev=libxenstat-cmd,mode=control \
            -nodefaults -no-user-config -name hvmtest -vnc 127.0.0.1:0,to=99 -display none -serial pty -device VGA,vgamem_mb=16 \
            -boot order=d -usb -usbdevice tablet -smp 2,maxcpus=2 -device rtl8139,id=nic0,netdev=net0,mac=00:16:3e:00:00:01 \
            -netdev type=tap,id=net0,ifname=vif7.0-emu,br=xenbr0,script=no,downscript=no \
            -machine xenfv,suppress-vmdesc=on -m 496 \
            -drive file=/var/lib/xen/disk.raw,if=ide,index=0,media=disk,format=raw,cache=writeback \
            -drive if=none,readonly=on,id=ide-5632,file=/root/a.iso,format=raw -device ide-cd,id=ide-5632,drive=ide-5632,bus=ide.1,unit=0";
        let c = run(&argv.split_whitespace().filter(|w| *w != "\\").collect::<Vec<_>>()).unwrap();
        assert_eq!(c.machine, MachineKind::XenFv { platform_device: true });
        assert_eq!(c.xen_domid, Some(7));
        assert_eq!(c.qmp.len(), 2);
        assert_eq!(c.serials, vec![SerialBackend::Pty]);
        assert_eq!(c.mem_size, 496 << 20);
        assert_eq!(c.ide.len(), 2);
        assert!(c.no_shutdown);
        // Accepted but not emulated yet: each is reported, none silently dropped.
        assert!(c.devices.iter().any(|d| d.driver == "VGA" && d.text == "VGA,vgamem_mb=16"), "{:?}", c.devices);
        assert_eq!(
            c.vnc,
            Some(crate::vnc::VncConfig {
                listen: crate::vnc::VncListen::Tcp { host: "127.0.0.1".into(), display: 0, to: Some(99) },
                password: false,
                share: crate::vnc::SharePolicy::AllowExclusive,
            })
        );
        for what in ["-usb", "tablet", "rtl8139", "-netdev"] {
            assert!(c.not_emulated.iter().any(|n| n.contains(what)), "{what} missing from {:?}", c.not_emulated);
        }
        let e = run(&["-machine", "xenfv"]).unwrap_err();
        assert!(e.0.contains("-xen-domid"), "{e}");
        let c = run(&[
            "-S",
            "-no-user-config",
            "-nodefaults",
            "-nographic",
            "-machine",
            "none,accel=xen",
            "-chardev",
            "socket,id=libxl-cmd,fd=3,server=on,wait=off",
            "-mon",
            "chardev=libxl-cmd,mode=control",
        ])
        .unwrap();
        assert_eq!(c.machine, MachineKind::None);
    }

    #[test]
    fn serial_files_truncate_unless_a_file_chardev_says_append() {
        let c = run(&["-kernel", "k", "-serial", "file:/tmp/a.log"]).unwrap();
        assert_eq!(c.serials, vec![SerialBackend::File { path: "/tmp/a.log".into(), append: false }]);

        // QEMU's spelling: the chardev may come after the -serial that names it.
        let c = run(&[
            "-kernel",
            "k",
            "-serial",
            "chardev:log",
            "-chardev",
            "file,id=log,path=/tmp/b,,c.log,append=on",
            "-serial",
            "chardev:plain",
            "-chardev",
            "file,id=plain,path=/tmp/p.log,append=off",
            "-serial",
            "chardev:out",
            "-chardev",
            "stdio,id=out",
        ])
        .unwrap();
        assert_eq!(
            c.serials,
            vec![
                SerialBackend::File { path: "/tmp/b,c.log".into(), append: true },
                SerialBackend::File { path: "/tmp/p.log".into(), append: false },
                SerialBackend::Stdio,
            ]
        );
        assert!(
            c.not_emulated.is_empty(),
            "chardevs used by serial ports are not 'not emulated': {:?}",
            c.not_emulated
        );

        let e = run(&["-kernel", "k", "-serial", "chardev:nope"]).unwrap_err();
        assert!(e.0.contains("chardev:nope") && e.0.contains("no -chardev"), "{e}");
        let e = run(&["-kernel", "k", "-chardev", "file,id=f,path=/x,append=maybe"]).unwrap_err();
        assert!(e.0.contains("append=maybe"), "{e}");
        let e = run(&["-kernel", "k", "-chardev", "socket,id=s,path=/x,server=on,wait=off", "-serial", "chardev:s"])
            .unwrap_err();
        assert!(e.0.contains("chardev:s"), "{e}");
        // append is a file option only: the socket parser still refuses it.
        let e = run(&["-kernel", "k", "-chardev", "socket,id=s,path=/x,server=on,append=on"]).unwrap_err();
        assert!(e.0.contains("append"), "{e}");
    }

    #[test]
    fn option_strings_split_like_qemu() {
        assert_eq!(
            split_opts("file:/a,,b,server=on,nowait"),
            vec![("".into(), "file:/a,b".into()), ("server".into(), "on".into()), ("nowait".into(), "on".into())]
        );
    }

    #[test]
    fn vga_std_is_the_standard_vga_device() {
        let c = run(&["-kernel", "k", "-device", "edu", "-vga", "std"]).unwrap();
        assert_eq!(c.devices.len(), 2);
        assert_eq!(c.devices[0].driver, "VGA", "made before the -device ones, as QEMU does");
        assert!(run(&["-kernel", "k", "-vga", "none"]).unwrap().devices.is_empty());
        let c = run(&["-kernel", "k", "-vga", "cirrus"]).unwrap();
        assert_eq!(c.devices.len(), 1);
        assert_eq!(c.devices[0].driver, "cirrus-vga");
        let e = run(&["-kernel", "k", "-vga", "vmware"]).unwrap_err();
        assert!(e.0.contains("-vga vmware") && e.0.contains("std"), "{e}");
    }
}

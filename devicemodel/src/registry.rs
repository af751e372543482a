//! The `-device NAME,...` registry: every device a user can add by name, with its option parser
//! and how it attaches to the machine. One entry per device; the command line validates through
//! the same function that later builds the device, so a bad property is refused at start-up with
//! the option named, before anything is built.
//!
//! Adding a device: put it in `devices/src/<name>/`, write its `attach_*` function here (parse
//! the properties with [`Props`], then build it through the [`DeviceBuilder`]: it hands out
//! the PCI slot, interrupts, DMA memory and registers the device for save/restore), and add one
//! line to [`DEVICES`].

use std::sync::Arc;

use devices::legacy::debug_port;

use devices::pc::{DeviceBuilder, PcError};

/// Why a `-device` was refused; every message names the option as the user wrote it.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("-device {0}: unknown device")]
    Unknown(String),
    /// A property's value is not one the device takes.
    #[error("-device {option}: {key}={value}: {why}")]
    BadProperty { option: String, key: String, value: String, why: String },
    #[error("-device {option}: unknown propert{} {}", if .names.len() == 1 { "y" } else { "ies" }, .names.join(", "))]
    UnknownProperties { option: String, names: Vec<String> },
    /// The properties are fine one by one but not together.
    #[error("-device {option}: {why}")]
    Invalid { option: String, why: String },
    /// The machine could not take the device (slot taken, resources overlap).
    #[error("-device {option}: {source}")]
    Attach {
        option: String,
        #[source]
        source: PcError,
    },
}

/// One `-device` from the command line, split into its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub driver: String,
    pub props: Vec<(String, String)>,
    /// The argument as the user wrote it (for messages).
    pub text: String,
}

/// The properties of one request, each taken at most once; [`Props::finish`] refuses the ones
/// nobody took.
pub struct Props<'a> {
    request: &'a DeviceRequest,
    used: Vec<bool>,
}

impl<'a> Props<'a> {
    pub fn new(request: &'a DeviceRequest) -> Self {
        Props { request, used: vec![false; request.props.len()] }
    }

    /// The option as written, for messages.
    pub fn option(&self) -> String {
        self.request.text.clone()
    }

    fn bad(&self, key: &str, value: &str, why: impl Into<String>) -> DeviceError {
        DeviceError::BadProperty { option: self.option(), key: key.into(), value: value.into(), why: why.into() }
    }

    /// An error for properties that do not go together.
    pub fn invalid(&self, why: impl Into<String>) -> DeviceError {
        DeviceError::Invalid { option: self.option(), why: why.into() }
    }

    /// An error for a device the machine could not take.
    pub fn attach_error(&self, source: PcError) -> DeviceError {
        DeviceError::Attach { option: self.option(), source }
    }

    /// The value of `key`, if given.
    pub fn get(&mut self, key: &str) -> Option<&'a str> {
        let i = self.request.props.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(self.request.props[i].1.as_str())
    }

    /// A number (decimal or 0x hex) of at most `max`, or `default`.
    pub fn number(&mut self, key: &str, default: u64, max: u64) -> Result<u64, DeviceError> {
        let Some(v) = self.get(key) else { return Ok(default) };
        let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.parse().ok(),
        };
        match n {
            Some(n) if n <= max => Ok(n),
            _ => Err(self.bad(key, v, format!("must be a number from 0 to {max:#x}"))),
        }
    }

    /// `addr=SLOT[.FN]` (hexadecimal, as QEMU reads it): the PCI slot, function 0 only.
    pub fn pci_slot(&mut self) -> Result<Option<u8>, DeviceError> {
        let Some(v) = self.get("addr") else { return Ok(None) };
        let (slot, func) = v.split_once('.').unwrap_or((v, "0"));
        let slot = u8::from_str_radix(slot.trim_start_matches("0x"), 16).ok().filter(|&s| s < 32);
        match (slot, func) {
            (Some(s), "0") => Ok(Some(s)),
            (Some(_), _) => Err(self.bad("addr", v, "only function 0 is supported")),
            (None, _) => Err(self.bad("addr", v, "expected a slot number 0-1f (hexadecimal)")),
        }
    }

    /// Refuses properties nobody asked for. `id=` is every device's (QMP names it).
    pub fn finish(mut self) -> Result<(), DeviceError> {
        let _ = self.get("id");
        let names: Vec<String> =
            self.request.props.iter().zip(&self.used).filter(|(_, u)| !**u).map(|((k, _), _)| k.clone()).collect();
        if names.is_empty() {
            Ok(())
        } else {
            Err(DeviceError::UnknownProperties { option: self.option(), names })
        }
    }
}

/// Parses a request's properties and, given a machine, builds and attaches the device. Called
/// once without a machine when the command line is read (to refuse bad properties early) and
/// once with it.
pub type AttachFn = fn(&mut Props<'_>, Option<&mut DeviceBuilder>) -> Result<(), DeviceError>;

pub struct DeviceEntry {
    pub name: &'static str,
    pub summary: &'static str,
    pub attach: AttachFn,
}

/// Every device `-device` can add.
pub static DEVICES: &[DeviceEntry] = &[
    DeviceEntry {
        name: "edu",
        summary: "QEMU's edu test device (INTx and MSI, DMA): -device edu[,addr=SLOT]",
        attach: attach_edu,
    },
    DeviceEntry {
        name: "virtio-rng-pci",
        summary: "virtio 1.x entropy device (1af4:1044; MSI-X, or INTx with vectors=0): \
                  -device virtio-rng-pci[,addr=SLOT][,vectors=2]",
        attach: attach_virtio_rng_pci,
    },
    DeviceEntry {
        name: "VGA",
        summary: "standard VGA with Bochs VBE (1234:1111; VRAM in BAR0, DISPI and EDID/qext in BAR2, \
                  SeaVGABIOS in the ROM BAR): -device VGA[,vgamem_mb=16][,romfile=FILE][,addr=SLOT]",
        attach: attach_vga,
    },
    DeviceEntry {
        name: "cirrus-vga",
        summary: "Cirrus CLGD 5446 (1013:00b8; xl's default card; LFB in BAR0, blitter and VGA ports in \
                  BAR1, Cirrus VGA BIOS in the ROM BAR): -device cirrus-vga[,vgamem_mb=4|8|16][,romfile=FILE][,addr=SLOT]",
        attach: attach_cirrus_vga,
    },
    DeviceEntry {
        name: "isa-debug-exit",
        summary: "writing V exits with status (V << 1) | 1: -device isa-debug-exit[,iobase=0x501][,iosize=2]",
        attach: attach_isa_debug_exit,
    },
];

pub fn find(name: &str) -> Option<&'static DeviceEntry> {
    DEVICES.iter().find(|d| d.name == name)
}

/// Checks a request's properties without building anything.
pub fn validate(request: &DeviceRequest) -> Result<(), DeviceError> {
    let entry = find(&request.driver).ok_or_else(|| DeviceError::Unknown(request.driver.clone()))?;
    let mut props = Props::new(request);
    (entry.attach)(&mut props, None)?;
    props.finish()
}

/// Builds every requested device into the machine, in command-line order.
pub fn attach_all(requests: &[DeviceRequest], builder: &mut DeviceBuilder) -> Result<(), DeviceError> {
    for request in requests {
        let entry = find(&request.driver).ok_or_else(|| DeviceError::Unknown(request.driver.clone()))?;
        let mut props = Props::new(request);
        (entry.attach)(&mut props, Some(builder))?;
        props.finish()?;
    }
    Ok(())
}

fn attach_edu(props: &mut Props<'_>, machine: Option<&mut DeviceBuilder>) -> Result<(), DeviceError> {
    let slot = props.pci_slot()?;
    if let Some(m) = machine {
        m.add_pci_function("edu", slot, devices::edu::Edu::new).map_err(|e| props.attach_error(e))?;
    }
    Ok(())
}

/// QEMU's properties: `vectors` (MSI-X vectors, default 2; 0 means INTx only). Only the modern
/// (virtio 1.x) interface exists here, so `disable-legacy=on` and `disable-modern=off` are
/// accepted as what they already are; QEMU's pc-machine default (transitional, 1af4:1005 with a
/// legacy I/O BAR) is not emulated: Linux's virtio_pci drives either one through the modern
/// interface.
fn attach_virtio_rng_pci(props: &mut Props<'_>, machine: Option<&mut DeviceBuilder>) -> Result<(), DeviceError> {
    use devices::virtio::{pci::VirtioPci, rng::VirtioRng};
    let slot = props.pci_slot()?;
    let max = devices::pci::msix::MSIX_MAX_VECTORS as u64;
    let vectors = props.number("vectors", devices::virtio::pci::DEFAULT_MSIX_VECTORS as u64, max)? as u16;
    match props.get("disable-legacy") {
        None | Some("on" | "true" | "yes") => {}
        Some(v) => {
            return Err(props.bad(
                "disable-legacy",
                v,
                "the legacy virtio 0.9 interface is not emulated (only disable-legacy=on)",
            ))
        }
    }
    match props.get("disable-modern") {
        None | Some("off" | "false" | "no") => {}
        Some(v) => return Err(props.bad("disable-modern", v, "only the modern virtio 1.x interface exists")),
    }
    if let Some(m) = machine {
        m.try_add_pci_function("virtio-rng-pci", slot, |r| VirtioPci::new(VirtioRng::default(), vectors, r))
            .map_err(|e| props.attach_error(e))?;
    }
    Ok(())
}

/// Where QEMU (as Debian packages it) looks for firmware files: SeaBIOS's VGA BIOSes are in
/// the seabios package, the rest of QEMU's ROMs in qemu-system-data and ipxe-qemu
/// (display.md section 0).
pub const FIRMWARE_DIRS: [&str; 3] = ["/usr/share/seabios", "/usr/share/qemu", "/usr/lib/ipxe/qemu"];

/// The option ROM a PCI device loads: `romfile=` if given (a path, or a name looked up in
/// [`FIRMWARE_DIRS`]; empty means no ROM, as in QEMU), otherwise `default`.
pub fn option_rom_image(
    props_romfile: Option<&str>,
    default: &str,
    option: &str,
) -> Result<Option<Vec<u8>>, DeviceError> {
    let name = match props_romfile {
        Some("") => return Ok(None),
        Some(name) => name,
        None => default,
    };
    let candidates: Vec<std::path::PathBuf> = if name.contains('/') {
        vec![name.into()]
    } else {
        FIRMWARE_DIRS.iter().map(|d| std::path::Path::new(d).join(name)).collect()
    };
    let bad = |why: String| DeviceError::BadProperty {
        option: option.into(),
        key: "romfile".into(),
        value: name.into(),
        why,
    };
    for path in &candidates {
        match std::fs::read(path) {
            Ok(bytes) => return Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(bad(format!("{}: {e}", path.display()))),
        }
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(bad(format!(
        "option ROM not found (looked for {}); install SeaBIOS's VGA BIOS (Debian: package seabios), \
         give romfile=PATH, or romfile= for a card without ROM",
        looked.join(", ")
    )))
}

/// QEMU's `-device VGA` properties this card has: `vgamem_mb` (clamped to 1-512 and rounded
/// up to a power of two, as QEMU does), `romfile`, `addr`. QEMU's `mmio`, `qemu-extended-regs`
/// and `edid` are accepted when they ask for what this card always is (`on`).
fn attach_vga(props: &mut Props<'_>, machine: Option<&mut DeviceBuilder>) -> Result<(), DeviceError> {
    use devices::display::stdvga;
    let slot = props.pci_slot()?;
    let vgamem_mb = props.number("vgamem_mb", stdvga::spec::VGAMEM_DEFAULT_MB, u32::MAX as u64)?;
    for key in ["mmio", "qemu-extended-regs", "edid"] {
        match props.get(key) {
            None | Some("on" | "true" | "yes") => {}
            Some(v) => return Err(props.bad(key, v, "only on is supported")),
        }
    }
    let romfile = props.get("romfile");
    if let Some(m) = machine {
        let rom = option_rom_image(romfile, stdvga::spec::ROM_FILE, &props.option())?;
        stdvga::attach(m, stdvga::StdVgaOptions { vgamem_mb: Some(vgamem_mb), slot, rom })
            .map_err(|e| props.attach_error(e))?;
    }
    Ok(())
}

/// QEMU's `-device cirrus-vga` properties: `vgamem_mb` (4, 8 or 16; QEMU's default is 4, libxl
/// passes its videoram, 8 by default), `romfile`, `addr`; `blitter=on` is what the card always is.
fn attach_cirrus_vga(props: &mut Props<'_>, machine: Option<&mut DeviceBuilder>) -> Result<(), DeviceError> {
    use devices::display::cirrus;
    let slot = props.pci_slot()?;
    let vgamem_mb = props.number("vgamem_mb", cirrus::spec::VGAMEM_MB_DEFAULT.into(), u32::MAX as u64)? as u32;
    if !cirrus::spec::VGAMEM_MB_ALLOWED.contains(&vgamem_mb) {
        return Err(props.bad("vgamem_mb", &vgamem_mb.to_string(), "the Cirrus card takes 4, 8 or 16 (MiB)"));
    }
    match props.get("blitter") {
        None | Some("on" | "true" | "yes") => {}
        Some(v) => return Err(props.bad("blitter", v, "only on is supported")),
    }
    let romfile = props.get("romfile");
    if let Some(m) = machine {
        let rom = option_rom_image(romfile, cirrus::spec::ROM_FILE, &props.option())?;
        cirrus::attach(m, cirrus::CirrusOptions { vgamem_mb, slot, rom }).map_err(|e| props.attach_error(e))?;
    }
    Ok(())
}

fn attach_isa_debug_exit(props: &mut Props<'_>, machine: Option<&mut DeviceBuilder>) -> Result<(), DeviceError> {
    let iobase = props.number("iobase", 0x501, 0xffff)?;
    let iosize = props.number("iosize", 2, 4)?;
    if !matches!(iosize, 1 | 2 | 4) {
        return Err(props.bad("iosize", &iosize.to_string(), "must be 1, 2 or 4"));
    }
    if iobase + iosize > 0x10000 {
        return Err(props.invalid("iobase + iosize is beyond port 0xffff"));
    }
    if let Some(m) = machine {
        let dev = debug_port::DebugExit::new(iobase, iosize, m.control());
        m.add_io("isa-debug-exit", (iobase as u16, iosize as u16), Arc::new(std::sync::Mutex::new(dev)))
            .map_err(|e| props.attach_error(e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> DeviceRequest {
        let opts = crate::cli::split_opts(text);
        DeviceRequest { driver: opts[0].1.clone(), props: opts[1..].to_vec(), text: text.into() }
    }

    #[test]
    fn bad_properties_are_refused_naming_the_option() {
        validate(&request("edu")).unwrap();
        validate(&request("edu,addr=5,id=t0")).unwrap();
        let e = validate(&request("edu,addr=40")).unwrap_err().to_string();
        assert!(e.contains("-device edu,addr=40") && e.contains("slot"), "{e}");
        let e = validate(&request("edu,addr=3.1")).unwrap_err().to_string();
        assert!(e.contains("function 0"), "{e}");
        let e = validate(&request("edu,colour=blue,size=3")).unwrap_err().to_string();
        assert!(e.contains("unknown properties colour, size"), "{e}");
        let e = validate(&request("isa-debug-exit,iosize=3")).unwrap_err().to_string();
        assert!(e.contains("1, 2 or 4"), "{e}");
        let e = validate(&request("isa-debug-exit,iobase=0xffff,iosize=4")).unwrap_err().to_string();
        assert!(e.contains("beyond port 0xffff"), "{e}");
        assert!(validate(&request("nonsense")).unwrap_err().to_string().contains("unknown device"));
        validate(&request("virtio-rng-pci")).unwrap();
        validate(&request("virtio-rng-pci,addr=4,vectors=0,disable-legacy=on,disable-modern=off")).unwrap();
        let e = validate(&request("virtio-rng-pci,vectors=4096")).unwrap_err().to_string();
        assert!(e.contains("vectors=4096"), "{e}");
        let e = validate(&request("virtio-rng-pci,disable-legacy=off")).unwrap_err().to_string();
        assert!(e.contains("legacy") && e.contains("not emulated"), "{e}");
        let e = validate(&request("virtio-rng-pci,rng=rng0")).unwrap_err().to_string();
        assert!(e.contains("unknown property rng"), "{e}");
        validate(&request("VGA,vgamem_mb=16,romfile=/x/vgabios-stdvga.bin,addr=2,edid=on")).unwrap();
        let e = validate(&request("VGA,vgamem_mb=big")).unwrap_err().to_string();
        assert!(e.contains("vgamem_mb=big"), "{e}");
        let e = validate(&request("VGA,mmio=off")).unwrap_err().to_string();
        assert!(e.contains("mmio=off"), "{e}");
    }

    #[test]
    fn cirrus_vga_takes_qemus_memory_sizes() {
        validate(&request("cirrus-vga")).unwrap();
        validate(&request("cirrus-vga,vgamem_mb=8")).unwrap();
        validate(&request("cirrus-vga,vgamem_mb=16,romfile=/x/vgabios-cirrus.bin,addr=3,blitter=on")).unwrap();
        let e = validate(&request("cirrus-vga,vgamem_mb=32")).unwrap_err().to_string();
        assert!(e.contains("vgamem_mb=32") && e.contains("4, 8 or 16"), "{e}");
        let e = validate(&request("cirrus-vga,blitter=off")).unwrap_err().to_string();
        assert!(e.contains("blitter=off"), "{e}");
    }

    #[test]
    fn a_missing_option_rom_says_where_it_looked_and_what_to_do() {
        let e = option_rom_image(Some("/nonexistent/vgabios-stdvga.bin"), "x", "-device VGA").unwrap_err();
        let e = e.to_string();
        assert!(e.contains("/nonexistent/vgabios-stdvga.bin") && e.contains("romfile="), "{e}");
        let e = option_rom_image(Some("no-such-rom.bin"), "x", "-device VGA").unwrap_err().to_string();
        assert!(e.contains("/usr/share/seabios/no-such-rom.bin"), "{e}");
        assert_eq!(option_rom_image(Some(""), "x", "-device VGA").unwrap(), None, "romfile= means no ROM");
    }
}

//! The command line, in QEMU's syntax: the same command runs on our binary and on
//! `qemu-system-x86_64`, which is how libxl drives us and how we benchmark side by side.
//!
//! Options we do not know, or know but do not implement, are refused with a message that names
//! the option; nothing is silently ignored.

use std::fmt;
use std::path::PathBuf;

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
  -kernel FILE                   Linux kernel: uncompressed vmlinux (PVH entry) or bzImage
  -initrd FILE                   initial ramdisk for -kernel
  -append CMDLINE                kernel command line for -kernel
  -bios FILE                     firmware image (SeaBIOS bios.bin) mapped below 4 GiB
  -boot order=DRIVES             boot order for the firmware (c disk, d CD-ROM, n network)
Devices and I/O:
  -serial stdio|file:PATH|null|none   add a 16550 serial port (COM1, COM2, ...)
  -nographic                     no display; COM1 on stdio unless -serial is given
  -display none                  no display
  -vga none                      no VGA card
  -nodefaults, -no-user-config   accepted (we never add devices you did not ask for)
  -device isa-debug-exit[,iobase=0xf4][,iosize=4]  writing V exits with status (V << 1) | 1
Control:
  -name NAME[,debug-threads=on]  guest name (used in logs)
  -no-shutdown                   on guest power-off, stop the guest but keep running
  -no-reboot                     exit instead of rebooting when the guest resets
  -S                             do not start the vCPUs until a QMP 'cont'
  -qmp unix:PATH,server=on,wait=off   QMP monitor socket
  -D FILE                        write the log to FILE instead of stderr
  -d ITEMS                       log items: guest_errors, unimp, debug, trace (comma separated)
  -version, --version            print the version and exit
  -h, -help, --help              print this help and exit
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialBackend {
    Stdio,
    File(PathBuf),
    Null,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugExit {
    pub iobase: u16,
    pub iosize: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpSocket {
    pub path: PathBuf,
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
    pub debug_exit: Option<DebugExit>,
    pub name: Option<String>,
    pub no_shutdown: bool,
    pub no_reboot: bool,
    pub start_paused: bool,
    pub qmp: Vec<QmpSocket>,
    pub log: LogConfig,
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
            debug_exit: None,
            name: None,
            no_shutdown: false,
            no_reboot: false,
            start_paused: false,
            qmp: Vec::new(),
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
    let f: f64 = num.parse().ok()?;
    (f.is_finite() && f > 0.0).then(|| (f * mult as f64) as u64)
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
            other => return err(format!("-smp: unknown property '{other}' (use cpus, maxcpus, sockets, cores, threads)")),
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
        "none" => return Ok(None),
        _ => match v.strip_prefix("file:") {
            Some(p) if !p.is_empty() => SerialBackend::File(PathBuf::from(p)),
            _ => {
                return err(format!(
                    "-serial {v}: unsupported serial backend (use stdio, file:PATH, null or none; pty comes later)"
                ))
            }
        },
    }))
}

fn parse_qmp(v: &str) -> Result<QmpSocket, CliError> {
    let opts = split_opts(v);
    let Some(path) = opts.first().and_then(|(k, p)| if k.is_empty() { p.strip_prefix("unix:") } else { None }) else {
        return err(format!("-qmp {v}: only unix:PATH,server=on,wait=off sockets are supported"));
    };
    for (k, val) in &opts[1..] {
        match (k.as_str(), val.as_str()) {
            ("server", "on" | "yes") | ("wait", "off" | "no") => {}
            ("nowait", _) => {}
            ("server", _) | ("wait", _) => return err(format!("-qmp {v}: only server=on,wait=off is supported")),
            _ => return err(format!("-qmp {v}: unknown socket property '{k}'")),
        }
    }
    if path.is_empty() {
        return err("-qmp unix:PATH: the socket path is empty");
    }
    Ok(QmpSocket { path: PathBuf::from(path) })
}

fn parse_machine(v: &str, cfg: &mut Config) -> Result<(), CliError> {
    for (k, val) in split_opts(v) {
        match k.as_str() {
            "" | "type" => match val.as_str() {
                "pc" => {}
                t if t.starts_with("pc-i440fx") => {}
                other => return err(format!("-machine {other}: unsupported machine type (this device model emulates 'pc', the i440FX/PIIX3 PC)")),
            },
            "accel" => check_accel(&val)?,
            "kernel-irqchip" if val == "on" || val == "split" => {}
            "dump-guest-core" | "mem-merge" | "vmport" | "usb" | "hpet" | "smm" | "sata" => {
                log::debug!("-machine {k}={val} accepted; it does not change this machine");
            }
            other => return err(format!("-machine: unsupported property '{other}'")),
        }
    }
    let _ = cfg;
    Ok(())
}

fn check_accel(v: &str) -> Result<(), CliError> {
    let name = split_opts(v).into_iter().next().map(|(_, n)| n).unwrap_or_default();
    match name.as_str() {
        "kvm" => Ok(()),
        other => err(format!("-accel {other}: unsupported accelerator (this device model runs guests on kvm; xen comes with the Xen backend)")),
    }
}

fn parse_device(v: &str, cfg: &mut Config) -> Result<(), CliError> {
    let opts = split_opts(v);
    let driver = opts.first().map(|(_, d)| d.clone()).unwrap_or_default();
    match driver.as_str() {
        "isa-debug-exit" => {
            let mut de = DebugExit { iobase: 0x501, iosize: 2 };
            for (k, val) in &opts[1..] {
                let n = parse_int(val).ok_or_else(|| CliError(format!("-device isa-debug-exit: {k}={val} is not a number")))?;
                match k.as_str() {
                    "iobase" if n < 0x10000 => de.iobase = n as u16,
                    "iosize" if matches!(n, 1 | 2 | 4) => de.iosize = n as u16,
                    _ => return err(format!("-device isa-debug-exit: bad property {k}={val}")),
                }
            }
            if de.iobase as u32 + de.iosize as u32 > 0x10000 {
                return err("-device isa-debug-exit: iobase + iosize is beyond port 0xffff");
            }
            cfg.debug_exit = Some(de);
            Ok(())
        }
        "" => err("-device: missing driver name"),
        other => err(format!("-device {other}: unsupported device (supported: isa-debug-exit)")),
    }
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
            "accel" => check_accel(&value("accelerator")?)?,
            "enable-kvm" => {}
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
                if let Some(s) = parse_serial(&value("serial backend")?)? {
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
                if v != "none" {
                    return err(format!("-vga {v}: unsupported VGA card (only 'none' for now)"));
                }
            }
            "nodefaults" | "no-user-config" | "no-hpet" => {}
            "device" => parse_device(&value("device description")?, &mut cfg)?,
            "name" => {
                let v = value("guest name")?;
                cfg.name = split_opts(&v).into_iter().find(|(k, _)| k.is_empty() || k == "guest").map(|(_, n)| n);
            }
            "no-shutdown" => cfg.no_shutdown = true,
            "no-reboot" => cfg.no_reboot = true,
            "S" => cfg.start_paused = true,
            "qmp" => cfg.qmp.push(parse_qmp(&value("QMP socket")?)?),
            "D" => cfg.log.file = Some(PathBuf::from(value("log file")?)),
            "d" => parse_log_items(&value("log items")?, &mut cfg.log)?,
            other => return err(format!("-{other}: unsupported option (see --help for what this device model accepts)")),
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
    if cfg.kernel.is_none() && cfg.bios.is_none() {
        return err("nothing to boot: give -kernel FILE (a Linux vmlinux or bzImage) or -bios FILE (e.g. /usr/share/seabios/bios.bin)");
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
            "-accel", "kvm", "-m", "256M", "-smp", "2", "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
            "-kernel", "/l3/vmlinux", "-initrd", "/l3/i.cpio", "-append", "console=ttyS0 quiet",
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
            "--machine", "pc,accel=kvm", "-M", "pc-i440fx-7.2", "-nographic", "-bios", "/b.bin", "-qmp",
            "unix:/tmp/q.sock,server=on,wait=off", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-name",
            "guest=demo,debug-threads=on", "-d", "guest_errors,unimp", "-D", "/tmp/log", "-boot", "order=dc",
        ])
        .unwrap();
        assert_eq!(c.serials, vec![SerialBackend::Stdio]);
        assert_eq!(c.qmp[0].path, PathBuf::from("/tmp/q.sock"));
        assert_eq!(c.debug_exit, Some(DebugExit { iobase: 0xf4, iosize: 4 }));
        assert_eq!(c.name.as_deref(), Some("demo"));
        assert!(c.log.guest_errors && c.log.unimp);
        assert_eq!(c.boot_order, "dc");
        assert_eq!(parse(["--version".to_string()]), Ok(Command::Version));
        assert_eq!(parse(["-h".to_string()]), Ok(Command::Help));
    }

    #[test]
    fn option_strings_split_like_qemu() {
        assert_eq!(
            split_opts("file:/a,,b,server=on,nowait"),
            vec![("".into(), "file:/a,b".into()), ("server".into(), "on".into()), ("nowait".into(), "on".into())]
        );
    }
}

//! Display commands (QEMU qapi/ui.json): `query-vnc`, `query-vnc-servers`,
//! `change-vnc-password`, `set_password`, `expire_password` and `screendump`.
//!
//! libxl 4.17 sends `query-vnc` after spawning us (it needs `enabled`, and with it `host` and
//! `service`) and, when xl.cfg has `vncpasswd`, `change-vnc-password`; with `-vnc ...,password=on`
//! clients are refused until then.

use std::io::Write;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::{Args, CommandContext, FdSets, QmpError, QmpHandler};
use crate::console::Console;
use crate::vnc::VncServer;

pub struct DisplayCommands {
    console: Console,
    vnc: Option<VncServer>,
}

impl DisplayCommands {
    pub fn new(console: Console, vnc: Option<VncServer>) -> Self {
        DisplayCommands { console, vnc }
    }

    /// QEMU vnc_display_password: only with `password=on` ("Could not set password" otherwise).
    fn set_vnc_password(&self, password: &str) -> Result<Value, QmpError> {
        match &self.vnc {
            Some(v) if v.password_enabled() => {
                v.set_password(password);
                Ok(json!({}))
            }
            _ => Err(QmpError::generic("Could not set password")),
        }
    }

    fn protocol_is_vnc(protocol: &str) -> Result<(), QmpError> {
        match protocol {
            "vnc" => Ok(()),
            "spice" => Err(QmpError::generic("SPICE is not in use")),
            other => Err(QmpError::generic(format!("Parameter 'protocol' does not accept value '{other}'"))),
        }
    }

    fn screendump(&self, ctx: &CommandContext<'_>, args: &Map<String, Value>) -> Result<Value, QmpError> {
        let mut a = Args::new(args);
        let filename = a.str("filename")?;
        let device = a.opt_str("device")?;
        let head = a.opt_i64("head")?;
        let format = a.opt_str("format")?.unwrap_or("ppm");
        a.finish()?;
        let png = match format {
            "ppm" => false,
            "png" => true,
            other => return Err(QmpError::generic(format!("Parameter 'format' does not accept value '{other}'"))),
        };
        let Some(name) = self.console.display_name() else {
            return Err(QmpError::generic("There is no console to take a screendump from."));
        };
        if let Some(d) = device {
            if d != name {
                return Err(QmpError::device_not_found(d));
            }
        }
        if head.is_some_and(|h| h != 0) {
            return Err(QmpError::generic(format!("Device '{}' has no head {}", name, head.unwrap_or(0))));
        }
        self.console.refresh_now();
        let (w, h, rgb) = {
            let fb = self.console.picture();
            let mut rgb = Vec::with_capacity(fb.pixels().len() * 3);
            for &p in fb.pixels() {
                rgb.extend_from_slice(&[(p >> 16) as u8, (p >> 8) as u8, p as u8]);
            }
            (fb.width(), fb.height(), rgb)
        };
        let file = if FdSets::is_fdset_path(filename) {
            ctx.fdsets().open_fdset_path(filename, true).map_err(QmpError::generic)?
        } else {
            std::fs::File::create(filename)
                .map_err(|e| QmpError::generic(format!("failed to open file '{filename}': {e}")))?
        };
        let mut out = std::io::BufWriter::new(file);
        let written = if png { write_png(&mut out, w, h, &rgb) } else { write_ppm(&mut out, w, h, &rgb) };
        written.and_then(|_| out.flush().map_err(|e| e.to_string())).map_err(QmpError::generic)?;
        Ok(json!({}))
    }
}

/// Binary PPM (P6), what QEMU's screendump writes by default.
pub fn write_ppm<W: Write>(out: &mut W, w: u32, h: u32, rgb: &[u8]) -> Result<(), String> {
    write!(out, "P6\n{w} {h}\n255\n").and_then(|_| out.write_all(rgb)).map_err(|e| e.to_string())
}

/// PNG, 8-bit RGB (QEMU 7.1+ `format: png`).
pub fn write_png<W: Write>(out: &mut W, w: u32, h: u32, rgb: &[u8]) -> Result<(), String> {
    let mut enc = png::Encoder::new(out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// `expire_password`'s time: `now`, `never`, `+SECONDS` from now, or seconds since the epoch.
fn parse_expiry(time: &str) -> Result<Option<SystemTime>, QmpError> {
    let bad = || QmpError::generic(format!("Could not set password expire time ('{time}': use now, never, +N or N)"));
    Ok(match time {
        "now" => Some(SystemTime::UNIX_EPOCH),
        "never" => None,
        t => {
            let (relative, n) = match t.strip_prefix('+') {
                Some(n) => (true, n),
                None => (false, t),
            };
            let secs: u64 = n.parse().map_err(|_| bad())?;
            let base = if relative { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
            Some(base.checked_add(Duration::from_secs(secs)).ok_or_else(bad)?)
        }
    })
}

impl QmpHandler for DisplayCommands {
    fn execute(&self, ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError> {
        match name {
            "query-vnc" => {
                Args::new(args).finish()?;
                Ok(self.vnc.as_ref().map_or_else(|| json!({"enabled": false}), |v| v.query()))
            }
            "query-vnc-servers" => {
                Args::new(args).finish()?;
                Ok(self.vnc.as_ref().map_or_else(|| json!([]), |v| v.query_servers()))
            }
            "change-vnc-password" => {
                let mut a = Args::new(args);
                let password = a.str("password")?;
                a.finish()?;
                self.set_vnc_password(password)
            }
            "set_password" => {
                let mut a = Args::new(args);
                let protocol = a.str("protocol")?;
                let password = a.str("password")?;
                let connected = a.opt_str("connected")?;
                let _display = a.opt_str("display")?;
                a.finish()?;
                Self::protocol_is_vnc(protocol)?;
                // VNC supports only connected=keep (QEMU qmp_set_password).
                if connected.is_some_and(|c| c != "keep") {
                    return Err(QmpError::generic("Invalid parameter 'connected'"));
                }
                self.set_vnc_password(password)
            }
            "expire_password" => {
                let mut a = Args::new(args);
                let protocol = a.str("protocol")?;
                let time = a.str("time")?;
                let _display = a.opt_str("display")?;
                a.finish()?;
                Self::protocol_is_vnc(protocol)?;
                let at = parse_expiry(time)?;
                match &self.vnc {
                    Some(v) if v.password_enabled() => {
                        v.expire_password(at);
                        Ok(json!({}))
                    }
                    _ => Err(QmpError::generic("Could not set password expire time")),
                }
            }
            "screendump" => self.screendump(ctx, args),
            _ => Err(QmpError::command_not_found(name)),
        }
    }

    fn command_names(&self) -> Vec<&'static str> {
        vec!["query-vnc", "query-vnc-servers", "change-vnc-password", "set_password", "expire_password", "screendump"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_times_parse_as_qemu_reads_them() {
        assert_eq!(parse_expiry("never").unwrap(), None);
        assert!(parse_expiry("now").unwrap().unwrap() <= SystemTime::now());
        assert!(parse_expiry("+60").unwrap().unwrap() > SystemTime::now() + Duration::from_secs(50));
        assert_eq!(parse_expiry("10").unwrap(), Some(SystemTime::UNIX_EPOCH + Duration::from_secs(10)));
        assert!(parse_expiry("soon").is_err());
        assert!(parse_expiry("+18446744073709551615").is_err());
    }

    #[test]
    fn ppm_and_png_hold_the_pixels() {
        let rgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3];
        let mut ppm = Vec::new();
        write_ppm(&mut ppm, 2, 2, &rgb).unwrap();
        assert_eq!(&ppm[..11], b"P6\n2 2\n255\n");
        assert_eq!(&ppm[11..], &rgb);
        let mut png_bytes = Vec::new();
        write_png(&mut png_bytes, 2, 2, &rgb).unwrap();
        let dec = png::Decoder::new(&png_bytes[..]);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (2, 2));
        assert_eq!(&buf[..12], &rgb);
    }

    fn run(h: &DisplayCommands, name: &str, args: Value) -> Result<Value, QmpError> {
        let fdsets = std::sync::Arc::new(FdSets::new());
        let events = crate::qmp::EventSender::new();
        let fds = std::cell::RefCell::new(crate::qmp::handler::ConnectionFds::default());
        let ctx = CommandContext::new("test", &fdsets, &events, &fds);
        h.execute(&ctx, name, args.as_object().unwrap())
    }

    #[test]
    fn libxl_flow_and_screendump_of_the_console() {
        use crate::console::pattern::PatternDisplay;
        use devices::display::SharedDisplay;
        let timers = devices::timer::ManualTimers::new(std::sync::Arc::new(devices::clock::ManualClock::new(0)));
        let console = Console::new(timers);
        let without_vnc = DisplayCommands::new(console.clone(), None);
        assert_eq!(run(&without_vnc, "query-vnc", json!({})).unwrap(), json!({"enabled": false}));
        assert_eq!(
            run(&without_vnc, "change-vnc-password", json!({"password": "x"})).unwrap_err().desc,
            "Could not set password"
        );
        let dir = std::env::temp_dir().join(format!("qmp-display-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("shot.png");
        let e = run(&without_vnc, "screendump", json!({"filename": out.to_str().unwrap()})).unwrap_err();
        assert_eq!(e.desc, "There is no console to take a screendump from.");

        let display = std::sync::Arc::new(std::sync::Mutex::new(PatternDisplay::new(48, 32)));
        struct Nothing;
        impl devices::input::KeyboardInput for Nothing {
            fn key(&self, _: devices::input::KeyCode, _: bool) {}
        }
        impl devices::input::PointerInput for Nothing {
            fn absolute(&self) -> bool {
                false
            }
            fn relative(&self, _: i32, _: i32, _: i32, _: u8) {}
        }
        let input = crate::machine::MachineInput {
            keyboard: std::sync::Arc::new(Nothing),
            pointer: std::sync::Arc::new(Nothing),
        };
        console.attach(&[display.clone() as SharedDisplay], input);
        // screendump works without a VNC server: PNG and PPM of the exact picture.
        run(&without_vnc, "screendump", json!({"filename": out.to_str().unwrap(), "format": "png"})).unwrap();
        let mut reader = png::Decoder::new(std::fs::File::open(&out).unwrap()).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (48, 32));
        let d = display.lock().unwrap();
        for (i, px) in buf.chunks_exact(3).enumerate() {
            let (x, y) = (i as u32 % 48, i as u32 / 48);
            let p = d.pixel(x, y);
            assert_eq!(px, [(p >> 16) as u8, (p >> 8) as u8, p as u8], "pixel {x},{y}");
        }
        drop(d);
        let ppm = dir.join("shot.ppm");
        run(&without_vnc, "screendump", json!({"filename": ppm.to_str().unwrap()})).unwrap();
        assert_eq!(std::fs::read(&ppm).unwrap().len(), "P6\n48 32\n255\n".len() + 48 * 32 * 3);
        assert_eq!(
            run(&without_vnc, "screendump", json!({"filename": "/x", "device": "nope"})).unwrap_err().desc,
            "Device 'nope' not found"
        );
        assert!(run(&without_vnc, "screendump", json!({"filename": "/x", "format": "jpeg"})).is_err());

        // With -vnc unix:...,password=on: query-vnc has what libxl needs; the password commands work.
        let sock = dir.join("vnc.sock");
        let cfg = crate::vnc::VncConfig {
            listen: crate::vnc::VncListen::Unix(sock),
            password: true,
            share: Default::default(),
        };
        let vnc = VncServer::start(crate::vnc::VncOptions::new(cfg), console.clone(), crate::qmp::EventSender::new())
            .unwrap();
        let h = DisplayCommands::new(console, Some(vnc.clone()));
        let q = run(&h, "query-vnc", json!({})).unwrap();
        assert_eq!(q["enabled"], true);
        assert_eq!(q["family"], "unix");
        assert!(q["host"].is_string() && q["service"].is_string());
        assert_eq!(q["auth"], "vnc");
        run(&h, "change-vnc-password", json!({"password": "pw"})).unwrap();
        run(&h, "set_password", json!({"protocol": "vnc", "password": "pw2", "connected": "keep"})).unwrap();
        assert_eq!(
            run(&h, "set_password", json!({"protocol": "spice", "password": "x"})).unwrap_err().desc,
            "SPICE is not in use"
        );
        run(&h, "expire_password", json!({"protocol": "vnc", "time": "never"})).unwrap();
        assert_eq!(run(&h, "query-vnc-servers", json!({})).unwrap()[0]["auth"], "vnc");
        assert!(run(&h, "query-vnc", json!({"bogus": 1})).is_err());
        vnc.shutdown();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

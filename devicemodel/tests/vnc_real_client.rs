//! Real VNC clients against our server, both installed by tests/scripts/setup.sh:
//! - Debian's `gvnccapture` (package gvncviewer) connects to a server showing a known pattern
//!   and saves a PNG, which must match the pattern pixel for pixel;
//! - `vncdo` (vncdotool 1.4.2 from PyPI, in a venv in the test cache; `VNCDO=path` overrides)
//!   logs in with VNC Authentication (and is refused with a wrong password), captures the
//!   picture, and types a key that must reach a real i8042 as its scancodes.
//!
//! The tests fail, not skip, when a client is missing or cannot run: a green run must mean a
//! real client saw the right picture.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use devicemodel::console::pattern::PatternDisplay;
use devicemodel::console::Console;
use devicemodel::event_loop::EventLoop;
use devicemodel::machine::MachineInput;
use devicemodel::qmp::EventSender;
use devicemodel::vnc::{VncConfig, VncOptions, VncServer};
use devices::display::SharedDisplay;
use devices::input::{KeyCode, KeyboardInput, PointerInput};

struct NoInput;
impl KeyboardInput for NoInput {
    fn key(&self, _: KeyCode, _: bool) {}
}
impl PointerInput for NoInput {
    fn absolute(&self) -> bool {
        false
    }
    fn relative(&self, _: i32, _: i32, _: i32, _: u8) {}
}

fn capture(display: u16, out: &std::path::Path) -> std::process::Output {
    // gvnccapture takes HOST:DISPLAY (port 5900 + display) and writes PNG by extension.
    let mut child = Command::new("gvnccapture")
        .arg(format!("127.0.0.1:{display}"))
        .arg(out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run gvnccapture ({e}): install package gvncviewer (tests/scripts/setup.sh does)")
        });
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u32>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = buf[..info.buffer_size()]
        .chunks_exact(channels)
        .map(|c| u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]))
        .collect();
    (info.width, info.height, pixels)
}

fn vncdo_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("VNCDO") {
        return p.into();
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
    cache.join("devicemodel-tests/vncdotool-1.4.2/bin/vncdo")
}

fn vncdo(port: u16, password: &str, args: &[&str]) -> std::process::Output {
    let path = vncdo_path();
    let mut child = Command::new(&path)
        .arg("-s")
        .arg(format!("127.0.0.1::{port}"))
        .arg("-p")
        .arg(password)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run tests/scripts/setup.sh (it installs vncdotool 1.4.2), or set VNCDO",
                path.display()
            )
        });
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn expect_pixels(d: &PatternDisplay) -> Vec<u32> {
    (0..d.height).flat_map(|y| (0..d.width).map(move |x| (x, y))).map(|(x, y)| d.pixel(x, y)).collect()
}

#[test]
fn vncdo_logs_in_with_vnc_authentication_captures_and_types() {
    use devices::bus::BusDevice;
    let event_loop = EventLoop::start(Arc::new(devices::clock::HostClock::new())).unwrap();
    let console = Console::new(Arc::new(event_loop.handle()));
    let (w, h) = (160u32, 120u32);
    let display = Arc::new(Mutex::new(PatternDisplay::new(w, h)));
    let i8042 = Arc::new(Mutex::new(devices::legacy::i8042::I8042::new(
        Arc::new(devices::interrupt::DisconnectedLine),
        Arc::new(devices::interrupt::DisconnectedLine),
        Arc::new(devices::vm_control::RecordingVmControl::default()),
    )));
    let ps2 = devices::legacy::i8042::Ps2Input(i8042.clone());
    console.attach(
        &[display.clone() as SharedDisplay],
        MachineInput { keyboard: Arc::new(ps2.clone()), pointer: Arc::new(ps2) },
    );
    let cfg = VncConfig::parse("127.0.0.1:50,password=on,to=99").unwrap().unwrap();
    let server = VncServer::start(VncOptions::new(cfg), console.clone(), EventSender::new()).unwrap();
    let port: u16 = server.address().service.parse().unwrap();
    server.set_password("s3cret");
    let dir = std::env::temp_dir().join(format!("vncdo-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("capture.png");
    let wrong = vncdo(port, "nope", &["capture", out.to_str().unwrap()]);
    assert!(!wrong.status.success() && !out.exists(), "a wrong password must be refused");
    let ok = vncdo(port, "s3cret", &["capture", out.to_str().unwrap()]);
    assert!(
        ok.status.success() && out.exists(),
        "vncdo capture failed ({}): {}{}",
        ok.status,
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let (cw, ch, pixels) = read_png(&out);
    assert_eq!((cw, ch), (w, h));
    assert_eq!(pixels, expect_pixels(&display.lock().unwrap()));
    let typed = vncdo(port, "s3cret", &["key", "a"]);
    assert!(typed.status.success(), "{}", String::from_utf8_lossy(&typed.stderr));
    let mut bytes = Vec::new();
    let start = std::time::Instant::now();
    while bytes.len() < 2 && start.elapsed() < Duration::from_secs(5) {
        let mut d = i8042.lock().unwrap();
        let mut b = [0u8];
        d.read(0x64, &mut b);
        if b[0] & 1 != 0 {
            d.read(0x60, &mut b);
            bytes.push(b[0]);
        }
        drop(d);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(bytes, vec![0x1e, 0x9e], "'a' pressed and released, in scancode set 1");
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gvnccapture_sees_the_exact_pattern() {
    let event_loop = EventLoop::start(Arc::new(devices::clock::HostClock::new())).unwrap();
    let console = Console::new(Arc::new(event_loop.handle()));
    let (w, h) = (320u32, 200u32);
    let display = Arc::new(Mutex::new(PatternDisplay::new(w, h)));
    console.attach(
        &[display.clone() as SharedDisplay],
        MachineInput { keyboard: Arc::new(NoInput), pointer: Arc::new(NoInput) },
    );
    // A free display between 50 and 99 (5950-5999), as libxl's to=99 finds one.
    let cfg = VncConfig::parse("127.0.0.1:50,to=99").unwrap().unwrap();
    let server = VncServer::start(VncOptions::new(cfg), console.clone(), EventSender::new()).unwrap();
    let port: u16 = server.address().service.parse().unwrap();
    let vnc_display = port - 5900;
    let dir = std::env::temp_dir().join(format!("vnc-real-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expect = |d: &PatternDisplay| -> Vec<u32> {
        (0..d.height).flat_map(|y| (0..d.width).map(move |x| (x, y))).map(|(x, y)| d.pixel(x, y)).collect()
    };
    for round in 0..2 {
        let out = dir.join(format!("capture{round}.png"));
        let _ = std::fs::remove_file(&out);
        let result = capture(vnc_display, &out);
        assert!(
            result.status.success() && out.exists(),
            "gvnccapture failed ({}): {}{}",
            result.status,
            String::from_utf8_lossy(&result.stdout),
            String::from_utf8_lossy(&result.stderr)
        );
        let (cw, ch, pixels) = read_png(&out);
        assert_eq!((cw, ch), (w, h));
        let want = expect(&display.lock().unwrap());
        let wrong = pixels.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(wrong, 0, "round {round}: {wrong} of {} pixels differ", want.len());
        // A changed picture for the second client.
        display.lock().unwrap().step();
        display.lock().unwrap().step();
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

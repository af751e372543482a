//! The server against an in-process RFB client over a Unix socket: handshakes, authentication,
//! updates (Raw, ZRLE, DesktopSize), hostile input, and input reaching a real i8042.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devices::bus::BusDevice;
use devices::display::{Display, SharedDisplay};
use devices::interrupt::RecordingLine;
use devices::legacy::i8042::{Ps2Input, I8042};
use devices::vm_control::RecordingVmControl;

use super::encoding::decode::ZrleDecoder;
use super::spec::*;
use super::*;
use crate::console::pattern::PatternDisplay;
use crate::event_loop::EventLoop;
use crate::machine::MachineInput;

struct Rig {
    _event_loop: EventLoop,
    console: Console,
    display: Arc<Mutex<PatternDisplay>>,
    i8042: Arc<Mutex<I8042>>,
    server: VncServer,
    events: EventSender,
    path: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rig_with(w: u32, h: u32, password: bool, write_timeout: Duration) -> Rig {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vnc-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("vnc.sock");
    let event_loop = EventLoop::start(Arc::new(devices::clock::HostClock::new())).unwrap();
    let console = Console::new(Arc::new(event_loop.handle()));
    let display = Arc::new(Mutex::new(PatternDisplay::new(w, h)));
    let i8042 = Arc::new(Mutex::new(I8042::new(
        Arc::new(RecordingLine::default()),
        Arc::new(RecordingLine::default()),
        Arc::new(RecordingVmControl::default()),
    )));
    let input = Ps2Input(i8042.clone());
    console.attach(
        &[display.clone() as SharedDisplay],
        MachineInput { keyboard: Arc::new(input.clone()), pointer: Arc::new(input) },
    );
    let mut options =
        VncOptions::new(VncConfig { listen: VncListen::Unix(path.clone()), password, share: SharePolicy::default() });
    options.write_timeout = write_timeout;
    let events = EventSender::new();
    let server = VncServer::start(options, console.clone(), events.clone()).unwrap();
    Rig { _event_loop: event_loop, console, display, i8042, server, events, path, _dir: TempDir(dir) }
}

fn rig(w: u32, h: u32) -> Rig {
    rig_with(w, h, false, WRITE_TIMEOUT)
}

fn connect(r: &Rig) -> UnixStream {
    let s = UnixStream::connect(&r.path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).unwrap();
    b
}

fn u32_at(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// The handshake for 3.8 with security None; returns the ServerInit size.
fn init(s: &mut UnixStream) -> (u32, u32) {
    assert_eq!(&read_n(s, 12), SERVER_VERSION);
    s.write_all(b"RFB 003.008\n").unwrap();
    assert_eq!(read_n(s, 2), vec![1, SECURITY_NONE]);
    s.write_all(&[SECURITY_NONE]).unwrap();
    assert_eq!(u32_at(&read_n(s, 4)), SECURITY_RESULT_OK);
    s.write_all(&[1]).unwrap();
    server_init(s)
}

fn server_init(s: &mut UnixStream) -> (u32, u32) {
    let b = read_n(s, 24);
    assert_eq!(&b[4..20], &super::pixel::PixelFormat::SERVER.to_wire());
    let name_len = u32_at(&b[20..]) as usize;
    assert_eq!(read_n(s, name_len), b"QEMU");
    (u32::from(u16::from_be_bytes([b[0], b[1]])), u32::from(u16::from_be_bytes([b[2], b[3]])))
}

fn set_encodings(s: &mut UnixStream, encs: &[i32]) {
    let mut m = vec![MSG_SET_ENCODINGS, 0];
    m.extend_from_slice(&(encs.len() as u16).to_be_bytes());
    for e in encs {
        m.extend_from_slice(&e.to_be_bytes());
    }
    s.write_all(&m).unwrap();
}

fn request(s: &mut UnixStream, incremental: bool, w: u16, h: u16) {
    let mut m = vec![MSG_FRAMEBUFFER_UPDATE_REQUEST, incremental as u8, 0, 0, 0, 0];
    m.extend_from_slice(&w.to_be_bytes());
    m.extend_from_slice(&h.to_be_bytes());
    s.write_all(&m).unwrap();
}

#[derive(Debug)]
struct Rect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    enc: i32,
    pixels: Vec<u32>,
}

/// Reads one FramebufferUpdate (skipping nothing: the next message must be one), decoding Raw
/// (native format) and ZRLE.
fn read_update(s: &mut UnixStream, zrle: &mut ZrleDecoder) -> Vec<Rect> {
    let head = read_n(s, 4);
    assert_eq!(head[0], MSG_FRAMEBUFFER_UPDATE, "expected an update, got message {}", head[0]);
    let n = u16::from_be_bytes([head[2], head[3]]);
    let mut rects = Vec::new();
    for _ in 0..n {
        let h = read_n(s, 12);
        let u = |i: usize| u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
        let (x, y, w, hh) = (u(0), u(2), u(4), u(6));
        let enc = i32::from_be_bytes(h[8..12].try_into().unwrap());
        let pixels = match enc {
            ENC_RAW => read_n(s, (w * hh * 4) as usize)
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            ENC_ZRLE => {
                let len = u32_at(&read_n(s, 4)) as usize;
                let body = read_n(s, len);
                zrle.decode(&body, w, hh)
            }
            ENC_CURSOR => {
                read_n(s, (w * hh * 4 + w.div_ceil(8) * hh) as usize);
                Vec::new()
            }
            _ => Vec::new(),
        };
        rects.push(Rect { x, y, w, h: hh, enc, pixels });
    }
    rects
}

/// Paints `rects` onto a `w`-wide client-side picture.
fn paint(picture: &mut [u32], w: u32, rects: &[Rect]) {
    for r in rects.iter().filter(|r| matches!(r.enc, ENC_RAW | ENC_ZRLE)) {
        for y in 0..r.h {
            for x in 0..r.w {
                picture[((r.y + y) * w + r.x + x) as usize] = r.pixels[(y * r.w + x) as usize];
            }
        }
    }
}

fn expected(d: &PatternDisplay) -> Vec<u32> {
    (0..d.height).flat_map(|y| (0..d.width).map(move |x| (x, y))).map(|(x, y)| d.pixel(x, y)).collect()
}

/// Whether the socket is closed by the server within `within` (reads drain what was sent).
fn closed_within(s: &mut UnixStream, within: Duration) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 65536];
    while start.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn versions_3_3_3_7_3_8_and_3_5_as_3_3_and_bad_ones_refused() {
    let r = rig(64, 48);
    for (client, minor) in [(b"RFB 003.003\n", 3), (b"RFB 003.005\n", 3), (b"RFB 003.007\n", 7), (b"RFB 003.008\n", 8)]
    {
        let mut s = connect(&r);
        read_n(&mut s, 12);
        s.write_all(client).unwrap();
        match minor {
            3 => assert_eq!(u32_at(&read_n(&mut s, 4)), u32::from(SECURITY_NONE), "3.3: the server picks"),
            _ => {
                assert_eq!(read_n(&mut s, 2), vec![1, SECURITY_NONE]);
                s.write_all(&[SECURITY_NONE]).unwrap();
                if minor == 8 {
                    assert_eq!(u32_at(&read_n(&mut s, 4)), SECURITY_RESULT_OK);
                }
            }
        }
        s.write_all(&[1]).unwrap();
        assert_eq!(server_init(&mut s), (64, 48), "{minor}");
    }
    for bad in [b"RFB 004.000\n", b"RFB 003.009\n", b"HTTP/1.1 200"] {
        let mut s = connect(&r);
        read_n(&mut s, 12);
        s.write_all(bad).unwrap();
        assert_eq!(u32_at(&read_n(&mut s, 4)), 0, "an invalid security type, then close");
        assert!(closed_within(&mut s, Duration::from_secs(2)));
    }
    // A client that picks a type we did not offer.
    let mut s = connect(&r);
    read_n(&mut s, 12);
    s.write_all(b"RFB 003.008\n").unwrap();
    read_n(&mut s, 2);
    s.write_all(&[SECURITY_VNC_AUTH]).unwrap();
    assert_eq!(u32_at(&read_n(&mut s, 4)), SECURITY_RESULT_FAILED);
    let len = u32_at(&read_n(&mut s, 4)) as usize;
    assert_eq!(read_n(&mut s, len), b"Authentication failed");
}

fn vnc_auth(r: &Rig, password: &[u8], minor: u8) -> (UnixStream, u32) {
    let mut s = connect(r);
    read_n(&mut s, 12);
    s.write_all(format!("RFB 003.00{minor}\n").as_bytes()).unwrap();
    if minor == 3 {
        assert_eq!(u32_at(&read_n(&mut s, 4)), u32::from(SECURITY_VNC_AUTH));
    } else {
        assert_eq!(read_n(&mut s, 2), vec![1, SECURITY_VNC_AUTH]);
        s.write_all(&[SECURITY_VNC_AUTH]).unwrap();
    }
    let challenge: [u8; 16] = read_n(&mut s, 16).try_into().unwrap();
    s.write_all(&super::auth::response(password, &challenge)).unwrap();
    let result = u32_at(&read_n(&mut s, 4));
    (s, result)
}

#[test]
fn vnc_authentication_is_refused_until_a_password_is_set_and_after_it_expires() {
    let r = rig_with(32, 32, true, WRITE_TIMEOUT);
    // libxl's flow: password=on, no password yet: every client is refused.
    let (mut s, result) = vnc_auth(&r, b"", 8);
    assert_eq!(result, SECURITY_RESULT_FAILED);
    let len = u32_at(&read_n(&mut s, 4)) as usize;
    assert_eq!(read_n(&mut s, len), b"Authentication failed");
    r.server.set_password("secret");
    let (mut s, result) = vnc_auth(&r, b"secret", 8);
    assert_eq!(result, SECURITY_RESULT_OK);
    s.write_all(&[1]).unwrap();
    assert_eq!(server_init(&mut s), (32, 32));
    let (_, result) = vnc_auth(&r, b"secreT", 8);
    assert_eq!(result, SECURITY_RESULT_FAILED);
    // 3.3: a result, no reason, then close.
    let (mut s, result) = vnc_auth(&r, b"wrong", 3);
    assert_eq!(result, SECURITY_RESULT_FAILED);
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    r.server.expire_password(Some(std::time::SystemTime::UNIX_EPOCH));
    assert_eq!(vnc_auth(&r, b"secret", 7).1, SECURITY_RESULT_FAILED, "expired");
    r.server.expire_password(None);
    assert_eq!(vnc_auth(&r, b"secret", 7).1, SECURITY_RESULT_OK);
    assert_eq!(r.server.query()["auth"], "vnc");
}

#[test]
fn raw_and_zrle_updates_carry_the_exact_picture_and_then_only_changes() {
    let r = rig(200, 100);
    for encodings in [vec![ENC_RAW], vec![ENC_ZRLE, ENC_RAW]] {
        let mut s = connect(&r);
        let (w, h) = init(&mut s);
        set_encodings(&mut s, &encodings);
        let mut zrle = ZrleDecoder::new();
        let mut picture = vec![0u32; (w * h) as usize];
        request(&mut s, false, w as u16, h as u16);
        let rects = read_update(&mut s, &mut zrle);
        assert!(rects.iter().all(|r| r.enc == encodings[0]), "{rects:?}");
        paint(&mut picture, w, &rects);
        assert_eq!(picture, expected(&r.display.lock().unwrap()));
        // Nothing changed: an incremental request stays unanswered.
        request(&mut s, true, w as u16, h as u16);
        s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut b = [0u8; 1];
        assert!(s.read(&mut b).is_err(), "nothing is sent while nothing changed");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // One tile changes: the pending request is answered with that tile only.
        r.display.lock().unwrap().step();
        let rects = read_update(&mut s, &mut zrle);
        // The tile that changed (and, from the second round on, the one that changed back).
        let area: u32 = rects.iter().map(|r| r.w * r.h).sum();
        assert!(area == 16 * 16 || area == 2 * 16 * 16, "{rects:?}");
        paint(&mut picture, w, &rects);
        assert_eq!(picture, expected(&r.display.lock().unwrap()));
    }
}

#[test]
fn desktop_size_follows_a_mode_change() {
    let r = rig(64, 48);
    let mut s = connect(&r);
    init(&mut s);
    set_encodings(&mut s, &[ENC_RAW, ENC_DESKTOP_SIZE]);
    let mut zrle = ZrleDecoder::new();
    request(&mut s, false, 64, 48);
    read_update(&mut s, &mut zrle);
    r.display.lock().unwrap().resize(100, 40);
    request(&mut s, true, 64, 48);
    let rects = read_update(&mut s, &mut zrle);
    assert_eq!((rects[0].enc, rects[0].w, rects[0].h), (ENC_DESKTOP_SIZE, 100, 40));
    let mut picture = vec![0u32; 100 * 40];
    paint(&mut picture, 100, &rects[1..]);
    assert_eq!(picture, expected(&r.display.lock().unwrap()));
}

#[test]
fn pseudo_encodings_are_acknowledged() {
    let r = rig(64, 48);
    let mut s = connect(&r);
    init(&mut s);
    set_encodings(&mut s, &[ENC_RAW, ENC_EXT_KEY_EVENT, ENC_POINTER_TYPE_CHANGE, ENC_CURSOR]);
    let mut zrle = ZrleDecoder::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.extend(read_update(&mut s, &mut zrle).into_iter().map(|r| (r.enc, r.x)));
    }
    assert!(seen.contains(&(ENC_EXT_KEY_EVENT, 0)), "{seen:?}");
    assert!(seen.contains(&(ENC_POINTER_TYPE_CHANGE, 0)), "relative pointer: x = 0; {seen:?}");
    request(&mut s, false, 64, 48);
    let rects = read_update(&mut s, &mut zrle);
    assert_eq!((rects[0].enc, rects[0].w, rects[0].h), (ENC_CURSOR, 1, 1));
}

#[test]
fn colour_map_formats_get_bgr233_and_hostile_formats_drop_the_client() {
    let r = rig(32, 16);
    let mut s = connect(&r);
    init(&mut s);
    let mut m = vec![MSG_SET_PIXEL_FORMAT, 0, 0, 0];
    m.extend_from_slice(&[8, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    s.write_all(&m).unwrap();
    let head = read_n(&mut s, 6);
    assert_eq!(head[0], MSG_SET_COLOUR_MAP_ENTRIES);
    assert_eq!(u16::from_be_bytes([head[4], head[5]]), 256);
    read_n(&mut s, 256 * 6);
    request(&mut s, false, 32, 16);
    let head = read_n(&mut s, 4);
    assert_eq!(head[0], MSG_FRAMEBUFFER_UPDATE);
    let rh = read_n(&mut s, 12);
    let (w, h) = (u16::from_be_bytes([rh[4], rh[5]]), u16::from_be_bytes([rh[6], rh[7]]));
    // One byte per pixel now.
    let px = read_n(&mut s, usize::from(w) * usize::from(h));
    let d = r.display.lock().unwrap();
    let bgr233 = |p: u32| {
        let c = |v: u32, max: u32| (v * max + 127) / 255;
        c((p >> 16) & 0xff, 7) | (c((p >> 8) & 0xff, 7) << 3) | (c(p & 0xff, 3) << 6)
    };
    assert_eq!(u32::from(px[1]), bgr233(d.pixel(1, 0)));
    drop(d);

    for bad in [
        [24u8, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0],
        [16, 16, 0, 1, 255, 255, 0, 63, 0, 31, 250, 5, 0, 0, 0, 0],
    ] {
        let mut s = connect(&r);
        init(&mut s);
        let mut m = vec![MSG_SET_PIXEL_FORMAT, 0, 0, 0];
        m.extend_from_slice(&bad);
        s.write_all(&m).unwrap();
        assert!(closed_within(&mut s, Duration::from_secs(2)), "{bad:?}");
    }
}

#[test]
fn cut_text_up_to_1_mib_is_discarded_and_more_drops_the_client() {
    let r = rig(32, 16);
    let mut s = connect(&r);
    init(&mut s);
    let mut m = vec![MSG_CLIENT_CUT_TEXT, 0, 0, 0];
    m.extend_from_slice(&MAX_CUT_TEXT.to_be_bytes());
    s.write_all(&m).unwrap();
    s.write_all(&vec![b'x'; MAX_CUT_TEXT as usize]).unwrap();
    request(&mut s, false, 32, 16);
    read_update(&mut s, &mut ZrleDecoder::new());
    let mut m = vec![MSG_CLIENT_CUT_TEXT, 0, 0, 0];
    m.extend_from_slice(&(MAX_CUT_TEXT + 1).to_be_bytes());
    s.write_all(&m).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)));
    // Unknown messages too.
    let mut s = connect(&r);
    init(&mut s);
    s.write_all(&[77]).unwrap();
    assert!(closed_within(&mut s, Duration::from_secs(2)));
}

#[test]
fn a_flood_of_requests_is_coalesced() {
    let r = rig(320, 200);
    let mut s = connect(&r);
    init(&mut s);
    let mut flood = Vec::new();
    for _ in 0..20_000 {
        flood.extend_from_slice(&[MSG_FRAMEBUFFER_UPDATE_REQUEST, 0, 0, 0, 0, 0, 1, 64, 0, 200]);
    }
    s.write_all(&flood).unwrap();
    // Then stop asking: what arrives is a handful of full updates, not 20000.
    let mut zrle = ZrleDecoder::new();
    let mut updates = 0;
    s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    loop {
        let mut b = [0u8; 4];
        if s.read_exact(&mut b).is_err() {
            break;
        }
        assert_eq!(b[0], MSG_FRAMEBUFFER_UPDATE);
        for _ in 0..u16::from_be_bytes([b[2], b[3]]) {
            let h = read_n(&mut s, 12);
            let u = |i: usize| u32::from(u16::from_be_bytes([h[i], h[i + 1]]));
            read_n(&mut s, (u(4) * u(6) * 4) as usize);
        }
        updates += 1;
    }
    let _ = &mut zrle;
    assert!((1..2000).contains(&updates), "{updates} updates for 20000 requests");
}

#[test]
fn a_client_that_never_reads_is_dropped_and_memory_stays_bounded() {
    let r = rig_with(1024, 768, false, Duration::from_millis(500));
    let mut s = connect(&r);
    init(&mut s);
    let start = Instant::now();
    // Keep asking for full updates (3 MiB each) without reading any.
    let mut dropped = false;
    while start.elapsed() < Duration::from_secs(10) {
        if s.write_all(&[MSG_FRAMEBUFFER_UPDATE_REQUEST, 0, 0, 0, 0, 0, 4, 0, 3, 0]).is_err() {
            dropped = true;
            break;
        }
        if r.server.clients() == 0 {
            dropped = true;
            break;
        }
        // The writer blocks on the full socket: at most one update is encoded at a time.
        assert!(r.server.updates_sent().iter().all(|&n| n < 8), "{:?}", r.server.updates_sent());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dropped, "a stuck client must be dropped");
    assert!(start.elapsed() < Duration::from_secs(5), "dropped after {:?}", start.elapsed());
    // Other clients are unaffected.
    let mut s2 = connect(&r);
    assert_eq!(init(&mut s2), (1024, 768));
}

fn drain_i8042(dev: &Arc<Mutex<I8042>>) -> Vec<u8> {
    let mut d = dev.lock().unwrap();
    let mut out = Vec::new();
    let mut b = [0u8];
    for _ in 0..64 {
        d.read(0x64, &mut b);
        if b[0] & 1 == 0 {
            break;
        }
        d.read(0x60, &mut b);
        out.push(b[0]);
    }
    out
}

fn key(s: &mut UnixStream, down: bool, keysym: u32) {
    let mut m = vec![MSG_KEY_EVENT, down as u8, 0, 0];
    m.extend_from_slice(&keysym.to_be_bytes());
    s.write_all(&m).unwrap();
}

/// Waits until the i8042 has `n` bytes or a second passed.
fn wait_bytes(dev: &Arc<Mutex<I8042>>, n: usize) -> Vec<u8> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < n && start.elapsed() < Duration::from_secs(2) {
        got.extend(drain_i8042(dev));
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

#[test]
fn keys_and_pointer_reach_the_ps2_keyboard_and_mouse() {
    let r = rig(64, 48);
    let mut s = connect(&r);
    init(&mut s);
    // Keysym 'a' through the en-us keymap: make 0x1e, break 0x9e (set 1, translation on).
    key(&mut s, true, 0x61);
    key(&mut s, false, 0x61);
    assert_eq!(wait_bytes(&r.i8042, 2), vec![0x1e, 0x9e]);
    // 'A' with the client's Shift: the letter key, no Caps Lock games (LED off, shift held).
    key(&mut s, true, 0xffe1);
    key(&mut s, true, 0x41);
    key(&mut s, false, 0x41);
    key(&mut s, false, 0xffe1);
    assert_eq!(wait_bytes(&r.i8042, 4), vec![0x2a, 0x1e, 0x9e, 0xaa]);
    // 'A' without Shift: Caps Lock is toggled first so the guest types upper case.
    key(&mut s, true, 0x41);
    assert_eq!(wait_bytes(&r.i8042, 3), vec![0x3a, 0xba, 0x1e]);
    key(&mut s, false, 0x41);
    wait_bytes(&r.i8042, 1);
    // ExtKeyEvent: the scancode wins without -k (qnum 0xc8 = 0xe0 0x48, Up). Its keysym is a
    // lower-case 'a' while our Caps Lock is on (toggled for the 'A' above), so Caps Lock is
    // toggled off first, as QEMU's lock-key sync does for every event with a letter keysym.
    let mut m = vec![MSG_QEMU, QEMU_EXT_KEY_EVENT, 0, 1];
    m.extend_from_slice(&0x61u32.to_be_bytes());
    m.extend_from_slice(&0xc8u32.to_be_bytes());
    s.write_all(&m).unwrap();
    assert_eq!(wait_bytes(&r.i8042, 4), vec![0x3a, 0xba, 0xe0, 0x48]);
    // Disconnecting releases what was held.
    drop(s);
    assert_eq!(wait_bytes(&r.i8042, 2), vec![0xe0, 0xc8]);

    // The mouse: enabled by the guest (0xd4 0xf4), absolute VNC positions become deltas.
    {
        let mut d = r.i8042.lock().unwrap();
        d.write(0x64, &[0xd4]);
        d.write(0x60, &[0xf4]);
    }
    assert_eq!(wait_bytes(&r.i8042, 1), vec![0xfa]);
    let mut s = connect(&r);
    init(&mut s);
    s.write_all(&[MSG_POINTER_EVENT, 0, 0, 10, 0, 10]).unwrap();
    s.write_all(&[MSG_POINTER_EVENT, 1, 0, 15, 0, 7]).unwrap();
    // First event: no motion (no previous position), no buttons: nothing changed, no packet
    // beyond the zero-motion one; second: +5 right, 3 up, left button.
    let bytes = wait_bytes(&r.i8042, 6);
    assert!(bytes.ends_with(&[0x09, 5, 3]), "{bytes:?}");
    drop(r.console);
}

#[test]
fn letters_typed_faster_than_the_guest_sets_its_leds_keep_their_case() {
    // vncdotool types "Hello" as bare keysyms (no Shift). Caps Lock goes on before 'H' and off
    // before 'e' on our own record of what we pressed; the guest never set its LEDs here, so a
    // decision on the LEDs would toggle again before 'l' ("HeLlO").
    let r = rig(64, 48);
    let mut s = connect(&r);
    init(&mut s);
    for c in "Hello".bytes() {
        key(&mut s, true, c.into());
        key(&mut s, false, c.into());
    }
    let (caps, caps_up) = (0x3a, 0xba);
    let (h, e, l, o) = (0x23, 0x12, 0x26, 0x18);
    let expected = vec![
        caps,
        caps_up,
        h,
        h | 0x80, // H: Caps Lock on, then the letter
        caps,
        caps_up,
        e,
        e | 0x80, // e: Caps Lock off again
        l,
        l | 0x80,
        l,
        l | 0x80,
        o,
        o | 0x80,
    ];
    assert_eq!(wait_bytes(&r.i8042, expected.len()), expected);
    drop(r.console);
}

#[test]
fn tcp_listen_tries_the_next_displays_with_to() {
    // Take a port, then ask for that display with to=: the server takes the next one.
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    if !(PORT_BASE..=65000).contains(&port) {
        // Ephemeral ports sit above 5900 on Linux; anything else cannot be expressed as a display.
        return;
    }
    let display = port - PORT_BASE;
    let event_loop = EventLoop::start(Arc::new(devices::clock::HostClock::new())).unwrap();
    let console = Console::new(Arc::new(event_loop.handle()));
    let cfg = VncConfig::parse(&format!("127.0.0.1:{display},to={}", display + 20)).unwrap().unwrap();
    let server = VncServer::start(VncOptions::new(cfg), console.clone(), EventSender::new()).unwrap();
    let q = server.query();
    assert_eq!(q["enabled"], true);
    assert_eq!(q["host"], "127.0.0.1");
    assert_eq!(q["family"], "ipv4");
    let service: u16 = q["service"].as_str().unwrap().parse().unwrap();
    assert!(service > port && service <= port + 20, "{service}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", service)).unwrap();
    let mut v = [0u8; 12];
    s.read_exact(&mut v).unwrap();
    assert_eq!(&v, SERVER_VERSION);
    let cfg = VncConfig::parse(&format!("127.0.0.1:{display}")).unwrap().unwrap();
    let e = VncServer::start(VncOptions::new(cfg), console, EventSender::new()).err().unwrap();
    assert!(e.contains("in use"), "{e}");
    server.shutdown();
}

#[test]
fn vnc_options_parse_as_libxl_writes_them() {
    let p = |s: &str| VncConfig::parse(s);
    assert_eq!(p("none").unwrap(), None);
    assert_eq!(
        p("127.0.0.1:0,password=on,to=99").unwrap(),
        Some(VncConfig {
            listen: VncListen::Tcp { host: "127.0.0.1".into(), display: 0, to: Some(99) },
            password: true,
            share: SharePolicy::AllowExclusive,
        })
    );
    assert_eq!(
        p(":3").unwrap(),
        Some(VncConfig {
            listen: VncListen::Tcp { host: "".into(), display: 3, to: None },
            password: false,
            share: SharePolicy::AllowExclusive
        })
    );
    assert_eq!(
        p("unix:/run/x.sock,password").unwrap(),
        Some(VncConfig {
            listen: VncListen::Unix("/run/x.sock".into()),
            password: true,
            share: SharePolicy::AllowExclusive
        })
    );
    assert!(p("127.0.0.1").unwrap_err().contains("HOST:DISPLAY"));
    assert!(p("127.0.0.1:70000").is_err());
    assert!(p(":1,to=0").is_err());
    assert!(p(":1,tls-creds=x").unwrap_err().contains("not supported"));
    assert!(p(":1,bogus=1").unwrap_err().contains("unknown option"));
    assert_eq!(p(":1,share=force-shared").unwrap().unwrap().share, SharePolicy::ForceShared);
    assert!(p(":1,share=sometimes").is_err());
}

#[test]
fn pattern_display_is_what_the_console_shows() {
    let mut d = PatternDisplay::new(40, 20);
    let mut fb = devices::display::Framebuffer::new(1, 1);
    d.refresh(&mut fb);
    assert_eq!(fb.pixels(), &expected(&d)[..]);
}

#[test]
fn qmp_events_and_query_vnc_follow_a_client() {
    let r = rig(32, 16);
    let (tx, rx) = std::sync::mpsc::sync_channel(16);
    assert!(r.events.subscribe_after(1, tx, "{}".into()));
    rx.recv().unwrap();
    let mut s = connect(&r);
    init(&mut s);
    let next = || -> Value { serde_json::from_str(&rx.recv_timeout(Duration::from_secs(5)).unwrap()).unwrap() };
    let connected = next();
    assert_eq!(connected["event"], "VNC_CONNECTED");
    assert_eq!(connected["data"]["server"]["auth"], "none");
    assert_eq!(connected["data"]["client"]["family"], "unix");
    assert_eq!(next()["event"], "VNC_INITIALIZED");
    assert_eq!(r.server.query()["clients"].as_array().unwrap().len(), 1);
    drop(s);
    assert_eq!(next()["event"], "VNC_DISCONNECTED");
    assert_eq!(r.server.query()["clients"].as_array().unwrap().len(), 0);
}

/// The 3.8 None handshake up to ClientInit with the given shared flag; true when ServerInit came.
fn init_shared(s: &mut UnixStream, shared: bool) -> bool {
    read_n(s, 12);
    s.write_all(b"RFB 003.008\n").unwrap();
    read_n(s, 2);
    s.write_all(&[SECURITY_NONE]).unwrap();
    read_n(s, 4);
    s.write_all(&[shared as u8]).unwrap();
    let mut b = [0u8; 24];
    s.read_exact(&mut b).is_ok()
}

#[test]
fn an_exclusive_client_takes_the_display_as_qemu_allows_by_default() {
    let r = rig(32, 16);
    let mut first = connect(&r);
    assert!(init_shared(&mut first, true));
    read_n(&mut first, 4); // the name
    let mut exclusive = connect(&r);
    assert!(init_shared(&mut exclusive, false));
    assert!(closed_within(&mut first, Duration::from_secs(2)), "the shared client is disconnected");
    let mut late = connect(&r);
    assert!(
        !init_shared(&mut late, true) || closed_within(&mut late, Duration::from_secs(2)),
        "refused while exclusive"
    );
}

#[test]
fn a_connection_flood_is_bounded() {
    let r = rig(32, 16);
    // Connections that never finish the handshake hold no more than MAX_CONNECTIONS threads;
    // beyond that the server closes them at once.
    let idle: Vec<UnixStream> = (0..MAX_CONNECTIONS + 8).map(|_| connect(&r)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut closed = 0;
    for mut s in idle {
        let mut v = [0u8; 12];
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        // Served connections got the version; refused ones read end-of-file.
        if let Ok(0) = s.read(&mut v) {
            closed += 1;
        }
    }
    assert!(closed >= 8, "{closed} of {} closed", MAX_CONNECTIONS + 8);
    assert!(r.server.inner.connections.load(std::sync::atomic::Ordering::SeqCst) <= MAX_CONNECTIONS);
}

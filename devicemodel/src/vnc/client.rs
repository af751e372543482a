//! One VNC client: the handshake (RFC 6143 7.1-7.3), the reader of its messages (7.5) and the
//! writer of our updates (7.6).
//!
//! Two threads per client. The reader parses messages and records what they ask for in the
//! [`ClientShared`] state (pixel format, encodings, "an update is wanted", dirty regions) or
//! forwards input. The writer sleeps until an update was asked for and there is something to
//! send, then encodes from the console's picture and writes it out. So a client gets an update
//! only when it asked (RFC 6143 7.5.3), dirty regions coalesce while it is busy, and at most one
//! encoded update per client exists at a time: a client that stops reading blocks its own writer
//! (bounded by the socket's write timeout, after which it is dropped), never our memory.

use std::io::{Read, Write};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use devices::display::{DirtyTiles, Rect};

use super::encoding::{raw, Zrle};
use super::input::{InputRouter, PointerState};
use super::pixel::PixelFormat;
use super::spec::*;
use crate::console::{Console, ConsoleListener};

/// More rectangles than this in one update are sent as one rectangle around them all.
const MAX_RECTS: usize = 1024;

/// How the server authenticates clients, decided per connection.
pub trait Authenticator {
    /// The security type offered.
    fn security_type(&self) -> u8;
    /// The password now (None: no password set, or it expired: VNC Authentication fails).
    fn password(&self) -> Option<Vec<u8>>;
}

/// What the handshake settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub minor: u8,
    pub shared: bool,
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// Runs the server side of the handshake up to and including ServerInit.
pub fn handshake<S: Read + Write>(
    s: &mut S,
    auth: &dyn Authenticator,
    size: (u32, u32),
    name: &str,
) -> Result<Handshake, String> {
    s.write_all(SERVER_VERSION).map_err(io)?;
    s.flush().map_err(io)?;
    let mut v = [0u8; 12];
    s.read_exact(&mut v).map_err(io)?;
    let minor = parse_version(&v).ok_or_else(|| {
        let _ = s.write_all(&0u32.to_be_bytes());
        format!("unsupported client version {:?}", String::from_utf8_lossy(&v).trim_end())
    })?;
    let offered = auth.security_type();
    if minor == 3 {
        // 3.3: the server decides (RFC 6143 appendix A.1).
        s.write_all(&u32::from(offered).to_be_bytes()).map_err(io)?;
    } else {
        s.write_all(&[1, offered]).map_err(io)?;
        s.flush().map_err(io)?;
        let mut choice = [0u8];
        s.read_exact(&mut choice).map_err(io)?;
        if choice[0] != offered {
            fail(s, minor, "Authentication failed")?;
            return Err(format!("client chose security type {} (offered {offered})", choice[0]));
        }
    }
    if offered == SECURITY_VNC_AUTH {
        let challenge = super::auth::challenge().map_err(|e| format!("no random challenge: {e}"))?;
        s.write_all(&challenge).map_err(io)?;
        s.flush().map_err(io)?;
        let mut answer = [0u8; CHALLENGE_LEN];
        s.read_exact(&mut answer).map_err(io)?;
        // QEMU refuses when no password is set or it expired, whatever the client answered.
        let ok = auth.password().is_some_and(|p| super::auth::check(&p, &challenge, &answer));
        if !ok {
            fail(s, minor, "Authentication failed")?;
            return Err(match auth.password() {
                None => "VNC authentication refused: no password is set (or it expired)".into(),
                Some(_) => "VNC authentication failed: wrong password".into(),
            });
        }
        s.write_all(&SECURITY_RESULT_OK.to_be_bytes()).map_err(io)?;
    } else if minor == 8 {
        // 3.8 sends a SecurityResult even for None; 3.3 and 3.7 do not.
        s.write_all(&SECURITY_RESULT_OK.to_be_bytes()).map_err(io)?;
    }
    s.flush().map_err(io)?;
    let mut shared = [0u8];
    s.read_exact(&mut shared).map_err(io)?;
    let mut init = Vec::with_capacity(24 + name.len());
    init.extend_from_slice(&(size.0.min(0xffff) as u16).to_be_bytes());
    init.extend_from_slice(&(size.1.min(0xffff) as u16).to_be_bytes());
    init.extend_from_slice(&PixelFormat::SERVER.to_wire());
    init.extend_from_slice(&(name.len() as u32).to_be_bytes());
    init.extend_from_slice(name.as_bytes());
    s.write_all(&init).map_err(io)?;
    s.flush().map_err(io)?;
    Ok(Handshake { minor, shared: shared[0] != 0 })
}

/// The minor version to speak: 3, 7 or 8 (3.4 and 3.5 are 3.3, as QEMU treats them).
fn parse_version(v: &[u8; 12]) -> Option<u8> {
    if &v[..4] != b"RFB " || v[7] != b'.' || v[11] != b'\n' {
        return None;
    }
    let num = |b: &[u8]| std::str::from_utf8(b).ok()?.parse::<u32>().ok();
    let (major, minor) = (num(&v[4..7])?, num(&v[8..11])?);
    match (major, minor) {
        (3, 3..=5) => Some(3),
        (3, 7) => Some(7),
        (3, 8) => Some(8),
        _ => None,
    }
}

fn fail<S: Write>(s: &mut S, minor: u8, reason: &str) -> Result<(), String> {
    s.write_all(&SECURITY_RESULT_FAILED.to_be_bytes()).map_err(io)?;
    if minor >= 8 {
        s.write_all(&(reason.len() as u32).to_be_bytes()).map_err(io)?;
        s.write_all(reason.as_bytes()).map_err(io)?;
    }
    s.flush().map_err(io)
}

/// The encodings and pseudo-encodings a client said it supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// The encoding for pixel data: Raw or ZRLE (the first of them in the client's list).
    pub zrle: bool,
    pub desktop_size: bool,
    pub cursor: bool,
    pub ext_key_event: bool,
    pub pointer_type_change: bool,
}

/// What the reader asks of the writer.
pub struct ClientState {
    pub pf: PixelFormat,
    pub features: Features,
    /// An update request is outstanding.
    pub requested: bool,
    /// What changed since the last update sent (in the console picture's tile geometry).
    pub dirty: DirtyTiles,
    pub send_colour_map: bool,
    pub send_ext_key_ack: bool,
    pub send_pointer_type: bool,
    pub send_cursor: bool,
    pub closed: bool,
    /// Updates written (for tests and logs).
    pub updates_sent: u64,
}

/// The state one client's reader, writer and the console share.
pub struct ClientShared {
    state: Mutex<ClientState>,
    wake: Condvar,
}

impl ClientShared {
    /// A client that has just seen ServerInit for a `width` x `height` picture: all of it is
    /// news to it.
    pub fn new(width: u32, height: u32) -> Self {
        let mut dirty = DirtyTiles::new(width, height);
        dirty.mark_all();
        ClientShared {
            state: Mutex::new(ClientState {
                pf: PixelFormat::SERVER,
                features: Features::default(),
                requested: false,
                dirty,
                send_colour_map: false,
                send_ext_key_ack: false,
                send_pointer_type: false,
                send_cursor: false,
                closed: false,
                updates_sent: 0,
            }),
            wake: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, ClientState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the writer.
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    fn changed(&self) {
        self.wake.notify_all();
    }
}

impl ConsoleListener for ClientShared {
    fn update(&self, dirty: &DirtyTiles) {
        let mut st = self.lock();
        if st.dirty.columns() != dirty.columns() || st.dirty.rows() != dirty.rows() {
            // A new geometry: everything, in the new geometry.
            st.dirty = dirty.clone();
            st.dirty.mark_all();
        } else {
            st.dirty.merge(dirty);
        }
        let wake = st.requested;
        drop(st);
        if wake {
            self.changed();
        }
    }
}

fn read_u8<R: Read>(r: &mut R) -> Result<u8, String> {
    let mut b = [0u8];
    r.read_exact(&mut b).map_err(io)?;
    Ok(b[0])
}

fn read_array<R: Read, const N: usize>(r: &mut R) -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(io)?;
    Ok(b)
}

/// Reads and acts on client messages until the client goes away or breaks the protocol
/// (the error says how; QEMU drops such clients too).
pub fn read_messages<R: Read>(
    r: &mut R,
    client: &ClientShared,
    input: &InputRouter,
    console: &Console,
) -> Result<(), String> {
    let mut pointer = PointerState::default();
    loop {
        let kind = match read_u8(r) {
            Ok(k) => k,
            Err(_) => return Ok(()),
        };
        match kind {
            MSG_SET_PIXEL_FORMAT => {
                let b: [u8; 19] = read_array(r)?;
                let wire: [u8; 16] = b[3..19].try_into().expect("16 bytes");
                let pf = PixelFormat::from_wire(&wire).map_err(|e| format!("SetPixelFormat: {e}"))?;
                let mut st = client.lock();
                st.pf = pf;
                st.send_colour_map = !pf.true_colour;
                // Everything again, in the new format (QEMU redraws too).
                st.dirty.mark_all();
                drop(st);
                client.changed();
            }
            MSG_SET_ENCODINGS => {
                let b: [u8; 3] = read_array(r)?;
                let n = u16::from_be_bytes([b[1], b[2]]);
                let mut f = Features::default();
                let mut chose = false;
                for _ in 0..n {
                    let e = i32::from_be_bytes(read_array(r)?);
                    match e {
                        ENC_ZRLE if !chose => {
                            f.zrle = true;
                            chose = true;
                        }
                        ENC_RAW if !chose => chose = true,
                        ENC_DESKTOP_SIZE => f.desktop_size = true,
                        ENC_CURSOR => f.cursor = true,
                        ENC_EXT_KEY_EVENT => f.ext_key_event = true,
                        ENC_POINTER_TYPE_CHANGE => f.pointer_type_change = true,
                        _ => {}
                    }
                }
                let mut st = client.lock();
                let old = st.features;
                st.features = f;
                // QEMU acknowledges ExtKeyEvent and announces the pointer type right away.
                st.send_ext_key_ack |= f.ext_key_event && !old.ext_key_event;
                st.send_pointer_type |= f.pointer_type_change && !old.pointer_type_change;
                st.send_cursor |= f.cursor && !old.cursor;
                drop(st);
                pointer.type_change = f.pointer_type_change;
                client.changed();
            }
            MSG_FRAMEBUFFER_UPDATE_REQUEST => {
                let b: [u8; 9] = read_array(r)?;
                let incremental = b[0] != 0;
                let u = |i: usize| u32::from(u16::from_be_bytes([b[i], b[i + 1]]));
                let mut st = client.lock();
                if !incremental {
                    // The client has lost (or never had) this region: resend it.
                    st.dirty.mark(Rect::new(u(1), u(3), u(5), u(7)));
                }
                st.requested = true;
                drop(st);
                client.changed();
            }
            MSG_KEY_EVENT => {
                let b: [u8; 7] = read_array(r)?;
                input.key(b[0] != 0, u32::from_be_bytes([b[3], b[4], b[5], b[6]]), None);
            }
            MSG_POINTER_EVENT => {
                let b: [u8; 5] = read_array(r)?;
                let x = u16::from_be_bytes([b[1], b[2]]);
                let y = u16::from_be_bytes([b[3], b[4]]);
                let size = {
                    let fb = console.picture();
                    (fb.width(), fb.height())
                };
                input.pointer(&mut pointer, b[0], x, y, size);
            }
            MSG_CLIENT_CUT_TEXT => {
                let b: [u8; 7] = read_array(r)?;
                let len = u32::from_be_bytes([b[3], b[4], b[5], b[6]]);
                if len > MAX_CUT_TEXT {
                    return Err(format!("ClientCutText of {len} bytes (the limit is 1 MiB)"));
                }
                // Discarded: there is no guest clipboard agent to hand it to.
                let copied = std::io::copy(&mut r.take(u64::from(len)), &mut std::io::sink()).map_err(io)?;
                if copied < u64::from(len) {
                    return Ok(());
                }
            }
            MSG_QEMU => match read_u8(r)? {
                QEMU_EXT_KEY_EVENT => {
                    let b: [u8; 10] = read_array(r)?;
                    let down = u16::from_be_bytes([b[0], b[1]]) != 0;
                    let keysym = u32::from_be_bytes([b[2], b[3], b[4], b[5]]);
                    let keycode = u32::from_be_bytes([b[6], b[7], b[8], b[9]]);
                    input.key(down, keysym, Some(keycode));
                }
                QEMU_AUDIO => {
                    let op = u16::from_be_bytes(read_array(r)?);
                    match op {
                        QEMU_AUDIO_ENABLE | QEMU_AUDIO_DISABLE => {}
                        QEMU_AUDIO_SET_FORMAT => {
                            let _: [u8; 6] = read_array(r)?;
                        }
                        other => return Err(format!("QEMU audio message {other}")),
                    }
                    // We never announced audio; QEMU drops clients that use it unasked.
                    return Err("QEMU audio message without audio support".into());
                }
                other => return Err(format!("QEMU client message {other}")),
            },
            other => return Err(format!("unknown message type {other}")),
        }
    }
}

/// What the writer sends next.
struct Job {
    pf: PixelFormat,
    features: Features,
    colour_map: bool,
    ext_key_ack: bool,
    pointer_type: bool,
    cursor: bool,
    update: Option<DirtyTiles>,
}

fn rect_header(r: Rect, encoding: i32, out: &mut Vec<u8>) {
    for v in [r.x, r.y, r.width, r.height] {
        out.extend_from_slice(&(v.min(0xffff) as u16).to_be_bytes());
    }
    out.extend_from_slice(&encoding.to_be_bytes());
}

/// The writer: waits for work, encodes it and writes it out, until the client is closed or a
/// write fails.
pub fn write_updates<W: Write>(
    w: &mut W,
    client: &ClientShared,
    console: &Console,
    absolute_pointer: &dyn Fn() -> bool,
) -> Result<(), String> {
    let mut zrle = Zrle::new();
    let mut known_size = {
        let fb = console.picture();
        (fb.width(), fb.height())
    };
    let mut out = Vec::new();
    loop {
        let job = {
            let mut st = client.lock();
            loop {
                if st.closed {
                    return Ok(());
                }
                let want_update =
                    st.requested && (st.dirty.any() || st.send_cursor || size_changed(console, known_size));
                if st.send_colour_map || st.send_ext_key_ack || st.send_pointer_type || want_update {
                    break;
                }
                st = client.wake.wait(st).unwrap_or_else(PoisonError::into_inner);
            }
            let want_update = st.requested && (st.dirty.any() || st.send_cursor || size_changed(console, known_size));
            Job {
                pf: st.pf,
                features: st.features,
                colour_map: std::mem::take(&mut st.send_colour_map),
                ext_key_ack: std::mem::take(&mut st.send_ext_key_ack),
                pointer_type: std::mem::take(&mut st.send_pointer_type),
                cursor: want_update && std::mem::take(&mut st.send_cursor),
                update: want_update.then(|| {
                    st.requested = false;
                    let d = st.dirty.clone();
                    st.dirty.clear();
                    d
                }),
            }
        };
        out.clear();
        if job.colour_map {
            let map = job.pf.colour_map();
            out.extend_from_slice(&[MSG_SET_COLOUR_MAP_ENTRIES, 0, 0, 0]);
            out.extend_from_slice(&(map.len() as u16).to_be_bytes());
            for rgb in map {
                for c in rgb {
                    out.extend_from_slice(&c.to_be_bytes());
                }
            }
        }
        if job.ext_key_ack {
            let (w, h) = known_size;
            out.extend_from_slice(&[MSG_FRAMEBUFFER_UPDATE, 0, 0, 1]);
            rect_header(Rect::new(0, 0, w, h), ENC_EXT_KEY_EVENT, &mut out);
        }
        if job.pointer_type {
            let (w, h) = known_size;
            out.extend_from_slice(&[MSG_FRAMEBUFFER_UPDATE, 0, 0, 1]);
            rect_header(Rect::new(absolute_pointer() as u32, 0, w, h), ENC_POINTER_TYPE_CHANGE, &mut out);
        }
        if let Some(dirty) = job.update {
            encode_update(&job.pf, job.features, job.cursor, dirty, console, &mut known_size, &mut zrle, &mut out);
        }
        w.write_all(&out).map_err(io)?;
        w.flush().map_err(io)?;
        if !out.is_empty() {
            client.lock().updates_sent += 1;
        }
    }
}

fn size_changed(console: &Console, known: (u32, u32)) -> bool {
    let fb = console.picture();
    (fb.width(), fb.height()) != known
}

#[allow(clippy::too_many_arguments)]
fn encode_update(
    pf: &PixelFormat,
    features: Features,
    cursor: bool,
    mut dirty: DirtyTiles,
    console: &Console,
    known_size: &mut (u32, u32),
    zrle: &mut Zrle,
    out: &mut Vec<u8>,
) {
    let mut rects: Vec<(Rect, i32)> = Vec::new();
    let mut blocks: Vec<Vec<u32>> = Vec::new();
    {
        let fb = console.picture();
        let size = (fb.width(), fb.height());
        if size != *known_size && features.desktop_size {
            rects.push((Rect::new(0, 0, size.0, size.1), ENC_DESKTOP_SIZE));
            blocks.push(Vec::new());
            *known_size = size;
            dirty = DirtyTiles::new(size.0, size.1);
            dirty.mark_all();
        }
        if dirty.columns() != fb.width().div_ceil(devices::display::TILE)
            || dirty.rows() != fb.height().div_ceil(devices::display::TILE)
        {
            dirty = DirtyTiles::new(fb.width(), fb.height());
            dirty.mark_all();
        }
        // A client that cannot resize sees what fits its framebuffer.
        let (cw, ch) = (known_size.0.min(size.0), known_size.1.min(size.1));
        let mut pixel_rects: Vec<Rect> = dirty
            .rects(size.0, size.1)
            .into_iter()
            .filter_map(|r| {
                let w = r.width.min(cw.saturating_sub(r.x));
                let h = r.height.min(ch.saturating_sub(r.y));
                (w > 0 && h > 0).then(|| Rect::new(r.x, r.y, w, h))
            })
            .collect();
        if pixel_rects.len() > MAX_RECTS {
            let y0 = pixel_rects.iter().map(|r| r.y).min().unwrap_or(0);
            let y1 = pixel_rects.iter().map(|r| r.y + r.height).max().unwrap_or(0);
            pixel_rects = vec![Rect::new(0, y0, cw, y1 - y0)];
        }
        for r in pixel_rects {
            let mut block = Vec::with_capacity((r.width * r.height) as usize);
            for y in r.y..r.y + r.height {
                let row = fb.row(y);
                block.extend_from_slice(&row[r.x as usize..(r.x + r.width) as usize]);
            }
            rects.push((r, if features.zrle { ENC_ZRLE } else { ENC_RAW }));
            blocks.push(block);
        }
    }
    let with_cursor = cursor && features.cursor;
    let n = rects.len() + with_cursor as usize;
    out.extend_from_slice(&[MSG_FRAMEBUFFER_UPDATE, 0]);
    out.extend_from_slice(&(n as u16).to_be_bytes());
    if with_cursor {
        // An invisible 1x1 cursor: the guest draws its own pointer into the picture, so the
        // client's local one would be a second, wrong one.
        rect_header(Rect::new(0, 0, 1, 1), ENC_CURSOR, out);
        pf.put(0, out);
        out.push(0);
    }
    for ((r, enc), block) in rects.into_iter().zip(blocks) {
        rect_header(r, enc, out);
        match enc {
            ENC_ZRLE => zrle.encode(pf, &block, r.width, r.height, out),
            ENC_RAW => raw(pf, &block, out),
            _ => {}
        }
    }
}

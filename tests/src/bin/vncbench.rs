//! A measuring VNC client for the display benchmark (bench/display.sh; runs static in L2).
//!
//! ```text
//! vncbench HOST:PORT [--secs S] [--encodings zrle|raw]
//! ```
//! RFB 3.8 with security None, 32 bpp true colour. It asks for one full (non-incremental) update
//! and counts its bytes, then keeps one incremental request outstanding for S seconds (default 10)
//! and counts the updates that carried pixels ("frames") and their bytes. Prints
//! `VNCBENCH w=.. h=.. enc=.. full_bytes=.. frames=.. secs=.. fps=.. bytes_per_frame=..`.
//! Only the encodings it offers are parsed (ZRLE, CopyRect, Raw, DesktopSize); anything else is
//! an error. The Show scenarios use real clients; this one exists to count bytes exactly.
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ENC_RAW: i32 = 0;
const ENC_COPYRECT: i32 = 1;
const ENC_ZRLE: i32 = 16;
const ENC_DESKTOP_SIZE: i32 = -223;

struct Conn {
    s: TcpStream,
    bytes: u64,
}

impl Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.s.read_exact(buf)?;
        self.bytes += buf.len() as u64;
        Ok(())
    }
    fn u8(&mut self) -> io::Result<u8> {
        let mut b = [0; 1];
        self.read(&mut b)?;
        Ok(b[0])
    }
    fn u16(&mut self) -> io::Result<u16> {
        let mut b = [0; 2];
        self.read(&mut b)?;
        Ok(u16::from_be_bytes(b))
    }
    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0; 4];
        self.read(&mut b)?;
        Ok(u32::from_be_bytes(b))
    }
    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut buf = [0u8; 65536];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.read(&mut buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads server messages until a FramebufferUpdate has been read; returns whether it carried pixels.
fn read_update(c: &mut Conn, w: &mut u16, h: &mut u16) -> io::Result<bool> {
    loop {
        match c.u8()? {
            0 => {
                c.u8()?;
                let n = c.u16()?;
                let mut pixels = false;
                for _ in 0..n {
                    let (_x, _y, rw, rh) = (c.u16()?, c.u16()?, c.u16()?, c.u16()?);
                    let enc = c.u32()? as i32;
                    match enc {
                        ENC_RAW => {
                            c.skip(rw as u64 * rh as u64 * 4)?;
                            pixels = true;
                        }
                        ENC_COPYRECT => {
                            c.skip(4)?;
                            pixels = true;
                        }
                        ENC_ZRLE => {
                            let len = c.u32()?;
                            c.skip(len as u64)?;
                            pixels = true;
                        }
                        ENC_DESKTOP_SIZE => {
                            *w = rw;
                            *h = rh;
                        }
                        e => return Err(bad(format!("server sent encoding {e}, which was not offered"))),
                    }
                }
                return Ok(pixels);
            }
            1 => {
                c.u8()?;
                c.u16()?;
                let n = c.u16()?;
                c.skip(n as u64 * 6)?;
            }
            2 => {}
            3 => {
                c.skip(3)?;
                let n = c.u32()?;
                c.skip(n as u64)?;
            }
            t => return Err(bad(format!("unknown server message type {t}"))),
        }
    }
}

fn request(c: &mut Conn, incremental: bool, w: u16, h: u16) -> io::Result<()> {
    let mut m = vec![3u8, incremental as u8, 0, 0, 0, 0];
    m.extend_from_slice(&w.to_be_bytes());
    m.extend_from_slice(&h.to_be_bytes());
    c.s.write_all(&m)
}

fn run(addr: &str, secs: f64, zrle: bool) -> io::Result<String> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let mut c = Conn { s, bytes: 0 };
    let mut ver = [0u8; 12];
    c.read(&mut ver)?;
    if !ver.starts_with(b"RFB 003.") {
        return Err(bad(format!("not an RFB server: {:?}", String::from_utf8_lossy(&ver))));
    }
    c.s.write_all(b"RFB 003.008\n")?;
    let n = c.u8()?;
    let mut types = vec![0u8; n as usize];
    c.read(&mut types)?;
    if !types.contains(&1) {
        return Err(bad(format!("server offers no security None (types {types:?})")));
    }
    c.s.write_all(&[1])?;
    if c.u32()? != 0 {
        return Err(bad("security handshake failed".into()));
    }
    c.s.write_all(&[1])?; // shared
    let (mut w, mut h) = (c.u16()?, c.u16()?);
    c.skip(16)?;
    let name_len = c.u32()?;
    c.skip(name_len as u64)?;
    // 32 bpp, depth 24, little-endian, true colour, 8 bits per channel at 16/8/0.
    let pf = [0u8, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0];
    c.s.write_all(&pf)?;
    let encs: Vec<i32> =
        if zrle { vec![ENC_ZRLE, ENC_COPYRECT, ENC_RAW, ENC_DESKTOP_SIZE] } else { vec![ENC_RAW, ENC_DESKTOP_SIZE] };
    let mut m = vec![2u8, 0];
    m.extend_from_slice(&(encs.len() as u16).to_be_bytes());
    for e in &encs {
        m.extend_from_slice(&e.to_be_bytes());
    }
    c.s.write_all(&m)?;
    // One full update: its size is what a client pays to see the whole screen.
    request(&mut c, false, w, h)?;
    let before = c.bytes;
    while !read_update(&mut c, &mut w, &mut h)? {
        request(&mut c, false, w, h)?;
    }
    let full = c.bytes - before;
    // Then incremental updates for `secs`.
    let (t0, b0) = (Instant::now(), c.bytes);
    let mut frames = 0u64;
    let limit = Duration::from_secs_f64(secs);
    while t0.elapsed() < limit {
        request(&mut c, true, w, h)?;
        c.s.set_read_timeout(Some(limit.saturating_sub(t0.elapsed()).max(Duration::from_millis(10))))?;
        match read_update(&mut c, &mut w, &mut h) {
            Ok(true) => frames += 1,
            Ok(false) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => break,
            Err(e) => return Err(e),
        }
    }
    let el = t0.elapsed().as_secs_f64();
    let bytes = c.bytes - b0;
    Ok(format!(
        "VNCBENCH w={w} h={h} enc={} full_bytes={full} frames={frames} secs={el:.2} fps={:.2} bytes_per_frame={}",
        if zrle { "zrle" } else { "raw" },
        frames as f64 / el,
        bytes.checked_div(frames).unwrap_or(0),
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(addr) = args.first() else {
        eprintln!("usage: vncbench HOST:PORT [--secs S] [--encodings zrle|raw]");
        std::process::exit(2);
    };
    let opt = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let secs = opt("--secs").and_then(|s| s.parse().ok()).unwrap_or(10.0);
    let zrle = opt("--encodings").as_deref() != Some("raw");
    match run(addr, secs, zrle) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            println!("VNCBENCH error: {e}");
            std::process::exit(1);
        }
    }
}

//! Pixel-exact checks of screenshots (real VNC clients' PNGs, QMP `screendump` PNG or PPM).
//!
//! ```text
//! pngcmp info IMAGE
//!     PNGCMP info WxH colours=N            (N capped at 65536)
//! pngcmp pattern IMAGE --seed S --size WxH [--at X,Y] [--depth 24|16]
//!     the WxH region at X,Y (default 0,0) must equal the test pattern `fbpat` (guest tool)
//!     wrote into the framebuffer: 24 = XRGB8888 as is, 16 = RGB565 widened by bit replication
//! pngcmp same A B [--rect X,Y,W,H]
//!     A and B (or that region of both) must be pixel-identical and of equal size
//! pngcmp same IMAGE --rect X,Y,W,H --at2 X2,Y2 [--differ 1]
//!     that region must equal (with --differ: must differ from) the same-sized one at X2,Y2
//! pngcmp text IMAGE --font VGABIOS.bin [--expect TEXT]
//!     decodes an 80-column text-mode screen (720 or 640 wide, 16-line cells) with the VGA BIOS's
//!     own 8x16 font, pixel-exact per cell; prints `TEXT NN: ...` rows; OK if TEXT is on a row
//! pngcmp nonblank IMAGE [--rect X,Y,W,H] --min N
//!     at least N pixels of the region differ from its most common colour (text is drawn)
//! ```
//!
//! Prints one `PNGCMP <command> OK|FAIL ...` line (with the first mismatches) and exits 0 on
//! OK, 1 on FAIL, 2 on a usage or file error.
use std::collections::HashMap;
use std::fs;
use std::process::ExitCode;

/// An image as 0x00RRGGBB pixels, row-major.
struct Image {
    w: usize,
    h: usize,
    px: Vec<u32>,
}

impl Image {
    fn at(&self, x: usize, y: usize) -> u32 {
        self.px[y * self.w + x]
    }
}

fn load(path: &str) -> Result<Image, String> {
    let data = fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if data.starts_with(b"P6") {
        load_ppm(&data).map_err(|e| format!("{path}: {e}"))
    } else {
        load_png(&data).map_err(|e| format!("{path}: {e}"))
    }
}

/// Binary PPM (P6, maxval 255), what QMP `screendump` writes by default.
fn load_ppm(data: &[u8]) -> Result<Image, String> {
    // Header: "P6" then width, height, maxval as whitespace-separated decimals (with # comments),
    // then exactly one whitespace byte.
    let mut fields = Vec::new();
    let mut i = 2;
    while fields.len() < 3 {
        while i < data.len() && (data[i].is_ascii_whitespace() || data[i] == b'#') {
            if data[i] == b'#' {
                while i < data.len() && data[i] != b'\n' {
                    i += 1;
                }
            } else {
                i += 1;
            }
        }
        let start = i;
        while i < data.len() && data[i].is_ascii_digit() {
            i += 1;
        }
        let n: usize =
            std::str::from_utf8(&data[start..i]).ok().and_then(|s| s.parse().ok()).ok_or("bad PPM header")?;
        fields.push(n);
    }
    i += 1;
    let (w, h, max) = (fields[0], fields[1], fields[2]);
    if max != 255 {
        return Err(format!("PPM maxval {max}, only 255 is supported"));
    }
    let need = w.checked_mul(h).and_then(|n| n.checked_mul(3)).ok_or("PPM too large")?;
    let body = data.get(i..i + need).ok_or("PPM shorter than its header says")?;
    let px = body.chunks_exact(3).map(|p| (p[0] as u32) << 16 | (p[1] as u32) << 8 | p[2] as u32).collect();
    Ok(Image { w, h, px })
}

fn load_png(data: &[u8]) -> Result<Image, String> {
    let mut dec = png::Decoder::new(data);
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = dec.read_info().map_err(|e| format!("PNG: {e}"))?;
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).map_err(|e| format!("PNG: {e}"))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let chans = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Indexed => return Err("indexed PNG was not expanded".into()),
    };
    let mut px = Vec::with_capacity(w * h);
    for row in buf.chunks(info.line_size).take(h) {
        for p in row.chunks_exact(chans).take(w) {
            let (r, g, b) = if chans >= 3 { (p[0], p[1], p[2]) } else { (p[0], p[0], p[0]) };
            px.push((r as u32) << 16 | (g as u32) << 8 | b as u32);
        }
    }
    if px.len() != w * h {
        return Err("PNG shorter than its header says".into());
    }
    Ok(Image { w, h, px })
}

/// The test pattern: a hash of (x, y, seed) so that any misplaced, shifted or repeated pixel
/// differs. Must stay identical to `pattern()` in tests/guest-tools/fbpat.c.
fn pattern(x: u32, y: u32, seed: u32) -> u32 {
    let mut h = x.wrapping_mul(0x9e37_79b1) ^ y.wrapping_mul(0x85eb_ca77) ^ seed.wrapping_mul(0xc2b2_ae3d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h & 0x00ff_ffff
}

/// What an RGB565 pixel holding `rgb` (fbpat truncates to 5/6/5 bits) looks like widened
/// to 8 bits per channel by replicating the high bits (pixman's and so QEMU's conversion).
fn via_rgb565(rgb: u32) -> u32 {
    let r5 = (rgb >> 19) & 0x1f;
    let g6 = (rgb >> 10) & 0x3f;
    let b5 = (rgb >> 3) & 0x1f;
    let r = r5 << 3 | r5 >> 2;
    let g = g6 << 2 | g6 >> 4;
    let b = b5 << 3 | b5 >> 2;
    r << 16 | g << 8 | b
}

/// The 8x16 font (256 glyphs of 16 row bytes) inside a VGA BIOS image, found by the standard
/// IBM glyph 0x01 (the smiley) that follows the empty glyph 0x00.
fn vga_font(rom: &[u8]) -> Option<&[u8]> {
    const SMILEY: [u8; 10] = [0x7e, 0x81, 0xa5, 0x81, 0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e];
    let at = rom.windows(SMILEY.len()).position(|w| w == SMILEY)?;
    let start = at.checked_sub(16 + 2)?;
    let font = rom.get(start..start + 256 * 16)?;
    font[..16].iter().all(|b| *b == 0).then_some(font)
}

/// Decodes an 80-column text-mode screen (9 or 8 pixels wide cells, 16 high) back to characters by
/// matching every cell exactly against the font: '?' for a cell no glyph matches (the cursor, a
/// rendering error), ' ' for a single-colour cell. Non-ASCII glyphs decode as '.'.
fn decode_text(im: &Image, font: &[u8]) -> Result<Vec<String>, String> {
    let cw = match im.w {
        720 => 9,
        640 => 8,
        w => return Err(format!("{w} pixels wide is not an 80-column text mode (720 or 640)")),
    };
    let mut rows = Vec::new();
    for row in 0..im.h / 16 {
        let mut line = String::new();
        for col in 0..80 {
            let (x0, y0) = (col * cw, row * 16);
            let mut hist: HashMap<u32, usize> = HashMap::new();
            for y in y0..y0 + 16 {
                for x in x0..x0 + cw {
                    *hist.entry(im.at(x, y)).or_default() += 1;
                }
            }
            let mut colours: Vec<(u32, usize)> = hist.into_iter().collect();
            colours.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            if colours.len() == 1 {
                line.push(' ');
                continue;
            }
            if colours.len() > 2 {
                line.push('?');
                continue;
            }
            let mut ch = '?';
            // Background = the more frequent colour first; then the other way (inverse video).
            'assign: for fg in [colours[1].0, colours[0].0] {
                let bits = |y: usize, x: usize| im.at(x0 + x, y0 + y) == fg;
                let order = (0x20u8..0x7f).chain(0x80..=0xff).chain(0..0x20);
                for g in order {
                    let glyph = &font[g as usize * 16..g as usize * 16 + 16];
                    let ok = (0..16).all(|y| {
                        let mut row_ok = (0..8).all(|x| bits(y, x) == (glyph[y] & (0x80 >> x) != 0));
                        if cw == 9 {
                            // The 9th column repeats the 8th for the line-drawing glyphs 0xc0-0xdf.
                            let ninth = (0xc0..=0xdf).contains(&g) && glyph[y] & 1 != 0;
                            row_ok &= bits(y, 8) == ninth;
                        }
                        row_ok
                    });
                    if ok {
                        ch = if (0x20..0x7f).contains(&g) { g as char } else { '.' };
                        break 'assign;
                    }
                }
            }
            line.push(ch);
        }
        rows.push(line);
    }
    Ok(rows)
}

struct Args {
    rest: Vec<String>,
    opts: HashMap<String, String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut rest = Vec::new();
    let mut opts = HashMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(k) = a.strip_prefix("--") {
            let v = it.next().ok_or(format!("--{k} needs a value"))?;
            opts.insert(k.to_string(), v.clone());
        } else {
            rest.push(a.clone());
        }
    }
    Ok(Args { rest, opts })
}

fn nums(s: &str, sep: &[char], n: usize, what: &str) -> Result<Vec<usize>, String> {
    let v: Vec<usize> =
        s.split(sep).map(|p| p.trim().parse()).collect::<Result<_, _>>().map_err(|_| what.to_string())?;
    if v.len() != n {
        return Err(what.to_string());
    }
    Ok(v)
}

/// The region X,Y,W,H (default: the whole image), which must lie inside the image.
fn rect(img: &Image, opt: Option<&String>) -> Result<(usize, usize, usize, usize), String> {
    let (x, y, w, h) = match opt {
        None => (0, 0, img.w, img.h),
        Some(s) => {
            let v = nums(s, &[','], 4, "--rect wants X,Y,W,H")?;
            (v[0], v[1], v[2], v[3])
        }
    };
    if x + w > img.w || y + h > img.h {
        return Err(format!("region {w}x{h} at {x},{y} is outside the {}x{} image", img.w, img.h));
    }
    Ok((x, y, w, h))
}

/// Compares the region pixel by pixel; returns a FAIL description or None.
fn compare(
    w: usize,
    h: usize,
    mut got: impl FnMut(usize, usize) -> u32,
    mut want: impl FnMut(usize, usize) -> u32,
) -> Option<String> {
    let mut bad = 0usize;
    let mut first = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let (g, e) = (got(x, y), want(x, y));
            if g != e {
                bad += 1;
                if first.len() < 4 {
                    first.push(format!("({x},{y}) got #{g:06x} want #{e:06x}"));
                }
            }
        }
    }
    (bad > 0).then(|| format!("{bad} of {} pixels differ; first: {}", w * h, first.join(", ")))
}

fn run(argv: &[String]) -> Result<Result<String, String>, String> {
    let cmd = argv.first().ok_or("usage: pngcmp info|pattern|same|nonblank ...")?.as_str();
    let a = parse(&argv[1..])?;
    let img = |i: usize| a.rest.get(i).ok_or(format!("{cmd}: missing image argument")).and_then(|p| load(p));
    match cmd {
        "info" => {
            let im = img(0)?;
            let mut colours: HashMap<u32, ()> = HashMap::new();
            for p in &im.px {
                if colours.len() >= 65536 {
                    break;
                }
                colours.insert(*p, ());
            }
            Ok(Ok(format!("{}x{} colours={}", im.w, im.h, colours.len())))
        }
        "pattern" => {
            let im = img(0)?;
            let seed: u32 = a.opts.get("seed").ok_or("--seed S is required")?.parse().map_err(|_| "bad --seed")?;
            let size = nums(a.opts.get("size").ok_or("--size WxH is required")?, &['x'], 2, "--size wants WxH")?;
            let at = match a.opts.get("at") {
                Some(s) => nums(s, &[','], 2, "--at wants X,Y")?,
                None => vec![0, 0],
            };
            let depth = a.opts.get("depth").map_or("24", |s| s.as_str());
            let (w, h) = (size[0], size[1]);
            if at[0] + w > im.w || at[1] + h > im.h {
                return Ok(Err(format!(
                    "image is {}x{}, too small for the {w}x{h} pattern at {},{}",
                    im.w, im.h, at[0], at[1]
                )));
            }
            let widen: fn(u32) -> u32 = match depth {
                "24" | "32" => |p| p,
                "16" => via_rgb565,
                d => return Err(format!("--depth {d}: expected 24 or 16")),
            };
            let got = |x: usize, y: usize| im.at(at[0] + x, at[1] + y);
            let want = |x: usize, y: usize| widen(pattern(x as u32, y as u32, seed));
            Ok(match compare(w, h, got, want) {
                None => Ok(format!("{w}x{h} at {},{} of {}x{} seed={seed} depth={depth}", at[0], at[1], im.w, im.h)),
                Some(f) => Err(format!("{w}x{h} at {},{} of {}x{}: {f}", at[0], at[1], im.w, im.h)),
            })
        }
        "same" if a.rest.len() == 1 => {
            // Two regions of one image: text printed twice renders to identical pixels.
            let im = img(0)?;
            let (rx, ry, w, h) = rect(&im, Some(a.opts.get("rect").ok_or("--rect is required with one image")?))?;
            let at2 =
                nums(a.opts.get("at2").ok_or("--at2 X,Y is required with one image")?, &[','], 2, "--at2 wants X,Y")?;
            rect(&im, Some(&format!("{},{},{w},{h}", at2[0], at2[1])))?;
            let r = compare(w, h, |i, j| im.at(rx + i, ry + j), |i, j| im.at(at2[0] + i, at2[1] + j));
            let what = format!("{w}x{h} at {rx},{ry} vs {},{}", at2[0], at2[1]);
            Ok(match (r, a.opts.contains_key("differ")) {
                (None, false) => Ok(what),
                (Some(f), true) => Ok(format!("{what} differ as expected ({f})")),
                (None, true) => Err(format!("{what} are identical, expected them to differ")),
                (Some(f), false) => Err(format!("{what}: {f}")),
            })
        }
        "same" => {
            let (x, y) = (img(0)?, img(1)?);
            if (x.w, x.h) != (y.w, y.h) {
                return Ok(Err(format!("sizes differ: {}x{} and {}x{}", x.w, x.h, y.w, y.h)));
            }
            let (rx, ry, w, h) = rect(&x, a.opts.get("rect"))?;
            Ok(match compare(w, h, |i, j| x.at(rx + i, ry + j), |i, j| y.at(rx + i, ry + j)) {
                None => Ok(format!("{w}x{h} at {rx},{ry} of {}x{}", x.w, x.h)),
                Some(f) => Err(f),
            })
        }
        "nonblank" => {
            let im = img(0)?;
            let (rx, ry, w, h) = rect(&im, a.opts.get("rect"))?;
            let min: usize = a.opts.get("min").ok_or("--min N is required")?.parse().map_err(|_| "bad --min")?;
            let mut hist: HashMap<u32, usize> = HashMap::new();
            for y in ry..ry + h {
                for x in rx..rx + w {
                    *hist.entry(im.at(x, y)).or_default() += 1;
                }
            }
            let (bg, n) = hist.iter().max_by_key(|(_, n)| **n).map(|(c, n)| (*c, *n)).unwrap_or((0, 0));
            let other = w * h - n;
            let msg = format!("{other} pixels differ from background #{bg:06x} in {w}x{h} at {rx},{ry} (min {min})");
            Ok(if other >= min { Ok(msg) } else { Err(msg) })
        }
        "text" => {
            let im = img(0)?;
            let rom = a.opts.get("font").ok_or("--font ROM (a VGA BIOS image holding the 8x16 font) is required")?;
            let rom_bytes = fs::read(rom).map_err(|e| format!("{rom}: {e}"))?;
            let font = vga_font(&rom_bytes)
                .ok_or(format!("{rom}: no 8x16 VGA font found (looked for the standard glyph 0x01)"))?;
            let rows = decode_text(&im, font)?;
            for (i, r) in rows.iter().enumerate() {
                if !r.trim().is_empty() {
                    println!("TEXT {i:02}: {}", r.trim_end());
                }
            }
            let found = a.opts.get("expect").map(|e| rows.iter().any(|r| r.contains(e.as_str())));
            let cells = format!("{}x{} cells of {}x16", rows.first().map_or(0, |r| r.len()), rows.len(), im.w / 80);
            Ok(match (found, a.opts.get("expect")) {
                (Some(true), Some(e)) => Ok(format!("{cells}: found {e:?}")),
                (Some(false), Some(e)) => Err(format!("{cells}: no row contains {e:?}")),
                _ if rows.iter().any(|r| !r.trim().is_empty()) => Ok(cells),
                _ => Err(format!("{cells}: no character decoded")),
            })
        }
        _ => Err(format!("unknown command {cmd:?}: info, pattern, same, nonblank or text")),
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    match run(&argv) {
        Ok(Ok(m)) => {
            println!("PNGCMP {cmd} OK {m}");
            ExitCode::SUCCESS
        }
        Ok(Err(m)) => {
            println!("PNGCMP {cmd} FAIL {m}");
            ExitCode::from(1)
        }
        Err(e) => {
            println!("PNGCMP {cmd} ERROR {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matches_the_guest_tool_reference_values() {
        // Same values as fbpat.c's self-check (`fbpat selftest`).
        assert_eq!(pattern(0, 0, 0), 0);
        assert_ne!(pattern(1, 0, 1), pattern(0, 1, 1));
        assert_ne!(pattern(256, 0, 1), pattern(0, 0, 1));
    }

    #[test]
    fn rgb565_widening_replicates_high_bits() {
        assert_eq!(via_rgb565(0xffffff), 0xffffff);
        assert_eq!(via_rgb565(0x000000), 0x000000);
        assert_eq!(via_rgb565(0x840000), 0x840000);
        assert_eq!(via_rgb565(0x080400), 0x080400);
    }

    #[test]
    fn text_mode_cells_decode_with_the_rom_font() {
        // A ROM with junk, then a font: glyph 0 empty, glyph 1 the standard smiley, 'A' a bar.
        let mut rom = vec![0x55u8; 100];
        let mut font = vec![0u8; 256 * 16];
        font[16 + 2..16 + 12].copy_from_slice(&[0x7e, 0x81, 0xa5, 0x81, 0x81, 0xbd, 0x99, 0x81, 0x81, 0x7e]);
        font[0x41 * 16 + 3] = 0b1100_0011;
        font[0x42 * 16 + 5] = 0xff;
        rom.extend_from_slice(&font);
        let f = vga_font(&rom).expect("font found");
        let mut im = Image { w: 720, h: 16, px: vec![0x0000aa; 720 * 16] };
        for x in [0, 1, 6, 7] {
            im.px[3 * 720 + x] = 0xffffff; // 'A' in cell 0
        }
        for x in 9..17 {
            im.px[5 * 720 + x] = 0xffffff; // 'B' in cell 1
        }
        im.px[18 + 720] = 0x123456; // cell 2: a third colour cannot be a glyph
        let rows = decode_text(&im, f).unwrap();
        assert_eq!(&rows[0][..4], "AB? ");
        im.px[5 * 720 + 17] = 0xffffff; // 9th column set on a glyph outside 0xc0-0xdf
        assert_eq!(&decode_text(&im, f).unwrap()[0][..2], "A?");
        assert!(decode_text(&Image { w: 100, h: 16, px: vec![0; 1600] }, f).is_err());
    }

    #[test]
    fn ppm_loads_and_compare_finds_one_changed_pixel() {
        let mut ppm = b"P6\n# c\n2 2\n255\n".to_vec();
        ppm.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let im = load_ppm(&ppm).unwrap();
        assert_eq!((im.w, im.h, im.at(1, 1)), (2, 2, 0x0a0b0c));
        let mut other = im.px.clone();
        assert!(compare(2, 2, |x, y| im.at(x, y), |x, y| other[y * 2 + x]).is_none());
        other[3] ^= 1;
        let f = compare(2, 2, |x, y| im.at(x, y), |x, y| other[y * 2 + x]).unwrap();
        assert!(f.starts_with("1 of 4 pixels differ; first: (1,1)"), "{f}");
        assert!(load_ppm(b"P6\n2 2\n255\n\x01").is_err());
    }
}

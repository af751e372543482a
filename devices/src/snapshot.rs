//! Device state for save/restore (Xen `xen-save-devices-state` / `-incoming`, COLO).
//!
//! Format choice: each device writes its fields in a fixed order as little-endian integers with
//! a tiny hand-written [`StateWriter`] / [`StateReader`] pair. There is no serde and no
//! self-describing encoding inside a device's payload: the machine-level container
//! (`devicemodel::migration`) frames every device as a section carrying the device's id,
//! instance, format [`Snapshot::VERSION`] and length, and a checksum covers the stream. A payload
//! is therefore only ever decoded by the code that wrote it (or a later version that knows the
//! old layout), which is what QEMU's VMState descriptions amount to as well, and it keeps the
//! binary small for the stub domain.
//!
//! Restored state is hostile input (a save file can be edited, and in a stub domain the guest's
//! own domain carries it). Every reader call names the field it reads, so an error says which
//! device and field was bad; every restore validates lengths, indices, enum values and positions
//! against the device as built, parses everything into locals first, and only then commits, so a
//! refused payload leaves the device as it was. Nothing here panics on any input.

use std::fmt;

/// Why a device refused a saved state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    /// The device's [`Snapshot::ID`].
    pub device: &'static str,
    /// The field being read or checked.
    pub field: String,
    pub kind: StateErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateErrorKind {
    /// The payload ended inside the field.
    Truncated,
    /// The payload has bytes left after the last field.
    TrailingBytes(usize),
    /// The payload was written by a format version this build does not read.
    UnsupportedVersion { found: u16, supported: u16 },
    /// The value is not one the device can be in.
    Invalid(String),
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device state '{}', field '{}': ", self.device, self.field)?;
        match &self.kind {
            StateErrorKind::Truncated => write!(f, "the saved state ends inside this field"),
            StateErrorKind::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the last field"),
            StateErrorKind::UnsupportedVersion { found, supported } => {
                write!(f, "saved with format version {found}; this build reads version {supported}")
            }
            StateErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StateError {}

/// Appends fields, little-endian.
#[derive(Default, Debug)]
pub struct StateWriter {
    buf: Vec<u8>,
}

impl StateWriter {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.buf.push(v as u8);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Bytes of a length both sides know (a register file).
    pub fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// A variable-length byte string: u32 length, then the bytes.
    pub fn blob(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.bytes(v);
    }
    /// An optional value: a presence byte, then the value if present.
    pub fn option<T>(&mut self, v: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        self.bool(v.is_some());
        if let Some(v) = v {
            write(self, v);
        }
    }
    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields back, each named for error messages.
#[derive(Debug)]
pub struct StateReader<'a> {
    device: &'static str,
    version: u16,
    data: &'a [u8],
    pos: usize,
}

impl<'a> StateReader<'a> {
    /// A reader over the payload of device `device`, saved with format `version`.
    pub fn new(device: &'static str, version: u16, data: &'a [u8]) -> Self {
        StateReader { device, version, data, pos: 0 }
    }

    /// The format version the payload was saved with.
    pub fn version(&self) -> u16 {
        self.version
    }

    pub fn device(&self) -> &'static str {
        self.device
    }

    /// An error about `field` (for checks after reading).
    pub fn invalid(&self, field: impl Into<String>, why: impl Into<String>) -> StateError {
        StateError { device: self.device, field: field.into(), kind: StateErrorKind::Invalid(why.into()) }
    }

    fn take(&mut self, field: &str, n: usize) -> Result<&'a [u8], StateError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(StateError { device: self.device, field: field.to_string(), kind: StateErrorKind::Truncated });
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], StateError> {
        let s = self.take(field, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }
    pub fn u8(&mut self, field: &str) -> Result<u8, StateError> {
        Ok(self.array::<1>(field)?[0])
    }
    /// A boolean: exactly 0 or 1.
    pub fn bool(&mut self, field: &str) -> Result<bool, StateError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(self.invalid(field, format!("boolean is {v}, not 0 or 1"))),
        }
    }
    pub fn u16(&mut self, field: &str) -> Result<u16, StateError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }
    pub fn u32(&mut self, field: &str) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }
    pub fn u64(&mut self, field: &str) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }
    pub fn i64(&mut self, field: &str) -> Result<i64, StateError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }
    /// A byte that must satisfy `ok` (`what` describes the allowed values for the error).
    pub fn u8_where(&mut self, field: &str, ok: impl FnOnce(u8) -> bool, what: &str) -> Result<u8, StateError> {
        let v = self.u8(field)?;
        if ok(v) {
            Ok(v)
        } else {
            Err(self.invalid(field, format!("{v:#x} is not {what}")))
        }
    }
    /// A byte string written by [`StateWriter::blob`], at most `max` bytes long.
    pub fn blob(&mut self, field: &str, max: usize) -> Result<Vec<u8>, StateError> {
        let len = self.u32(field)? as usize;
        if len > max {
            return Err(self.invalid(field, format!("length {len} exceeds the maximum {max}")));
        }
        Ok(self.take(field, len)?.to_vec())
    }
    /// An optional value written by [`StateWriter::option`].
    pub fn option<T>(
        &mut self,
        field: &str,
        read: impl FnOnce(&mut Self) -> Result<T, StateError>,
    ) -> Result<Option<T>, StateError> {
        if self.bool(field)? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }
    /// Fails if bytes are left over.
    pub fn finish(&self) -> Result<(), StateError> {
        match self.data.len() - self.pos {
            0 => Ok(()),
            n => Err(StateError { device: self.device, field: "(end)".into(), kind: StateErrorKind::TrailingBytes(n) }),
        }
    }
}

/// A device whose guest-visible state can be saved and restored.
///
/// `restore` runs on a device built the same way as the one saved (same machine configuration)
/// and must leave it unchanged when it returns an error: read and check every field, call
/// [`StateReader::finish`], and only then commit.
pub trait Snapshot {
    /// Stable name of the state format, used as the section id in the stream.
    const ID: &'static str;
    /// Format version written by `save`; bump it when the layout changes.
    const VERSION: u16;
    fn save(&self, w: &mut StateWriter);
    fn restore(&mut self, r: &mut StateReader<'_>) -> Result<(), StateError>;
}

/// The device's state as one payload.
pub fn save_to_vec<T: Snapshot + ?Sized>(dev: &T) -> Vec<u8> {
    let mut w = StateWriter::new();
    dev.save(&mut w);
    w.into_bytes()
}

/// Restores `dev` from a payload saved with format `version`; the whole payload must be used.
pub fn restore_from<T: Snapshot + ?Sized>(dev: &mut T, version: u16, data: &[u8]) -> Result<(), StateError> {
    if version != T::VERSION {
        return Err(StateError {
            device: T::ID,
            field: "(version)".into(),
            kind: StateErrorKind::UnsupportedVersion { found: version, supported: T::VERSION },
        });
    }
    let mut r = StateReader::new(T::ID, version, data);
    dev.restore(&mut r)?;
    // Implementations call `finish` themselves before committing; this catches any that forgot.
    r.finish()
}

/// Test support: feeds truncated, corrupted and random payloads to fresh devices. None may panic;
/// every truncation must be refused.
#[cfg(test)]
pub(crate) mod fuzz {
    use super::*;

    /// xorshift64*: deterministic, dependency-free randomness for tests.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// `valid` is a payload `make()` accepts. Every strict prefix must be refused; flipped bytes
    /// and random payloads must not panic.
    pub(crate) fn hostile_payloads<T: Snapshot>(mut make: impl FnMut() -> T, valid: &[u8]) {
        restore_from(&mut make(), T::VERSION, valid).unwrap_or_else(|e| panic!("valid payload refused: {e}"));
        for len in 0..valid.len() {
            let r = restore_from(&mut make(), T::VERSION, &valid[..len]);
            assert!(r.is_err(), "{}: a payload truncated to {len} of {} bytes was accepted", T::ID, valid.len());
        }
        let mut extra = valid.to_vec();
        extra.push(0);
        assert!(restore_from(&mut make(), T::VERSION, &extra).is_err(), "{}: trailing byte accepted", T::ID);
        assert!(restore_from(&mut make(), T::VERSION + 1, valid).is_err(), "{}: unknown version accepted", T::ID);
        let mut rng = Rng::new(0x5eed ^ valid.len() as u64);
        let mut dev = make();
        for _ in 0..2000 {
            let mut p = valid.to_vec();
            for _ in 0..=(rng.next() % 4) {
                if p.is_empty() {
                    break;
                }
                let i = (rng.next() % p.len() as u64) as usize;
                p[i] = rng.next() as u8;
            }
            // The same device takes many payloads in a row: accepted ones must leave it usable.
            let _ = restore_from(&mut dev, T::VERSION, &p);
        }
        for _ in 0..300 {
            let len = (rng.next() % (valid.len() as u64 * 2 + 8)) as usize;
            let p: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let _ = restore_from(&mut make(), T::VERSION, &p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_errors_name_device_and_field() {
        let mut w = StateWriter::new();
        w.u8(1);
        w.u16(0x1234);
        w.u32(0xdead_beef);
        w.u64(u64::MAX - 1);
        w.i64(-5);
        w.bool(true);
        w.blob(b"abc");
        w.option(Some(&7u8), |w, v| w.u8(*v));
        w.option::<u8>(None, |w, v| w.u8(*v));
        let bytes = w.into_bytes();
        let mut r = StateReader::new("dev", 1, &bytes);
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.u32("c").unwrap(), 0xdead_beef);
        assert_eq!(r.u64("d").unwrap(), u64::MAX - 1);
        assert_eq!(r.i64("e").unwrap(), -5);
        assert!(r.bool("f").unwrap());
        assert_eq!(r.blob("g", 3).unwrap(), b"abc");
        assert_eq!(r.option("h", |r| r.u8("h")).unwrap(), Some(7));
        assert_eq!(r.option("i", |r| r.u8("i")).unwrap(), None);
        r.finish().unwrap();

        let mut r = StateReader::new("dev", 1, &bytes[..2]);
        r.u8("a").unwrap();
        let e = r.u16("the-word").unwrap_err();
        assert_eq!((e.device, e.field.as_str(), &e.kind), ("dev", "the-word", &StateErrorKind::Truncated));
        assert!(e.to_string().contains("'dev'") && e.to_string().contains("'the-word'"));
        let mut r = StateReader::new("dev", 1, &[2]);
        assert!(matches!(r.bool("flag").unwrap_err().kind, StateErrorKind::Invalid(_)));
        let mut r = StateReader::new("dev", 1, &[0xff, 0xff, 0xff, 0xff]);
        assert!(r.blob("huge", 16).is_err(), "a length beyond the maximum is refused before reading");
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod device_tests;

/// [`Snapshot`] as a trait object, so a machine can keep its devices in one list and save and
/// restore them without naming their types (every `Snapshot` is one).
pub trait DeviceState: Send {
    /// The section id ([`Snapshot::ID`]).
    fn state_id(&self) -> &'static str;
    /// The format version `save_state` writes ([`Snapshot::VERSION`]).
    fn state_version(&self) -> u16;
    fn save_state(&self) -> Vec<u8>;
    /// Restores a payload saved with format `version`; refused payloads change nothing.
    fn restore_state(&mut self, version: u16, data: &[u8]) -> Result<(), StateError>;
}

impl<T: Snapshot + Send> DeviceState for T {
    fn state_id(&self) -> &'static str {
        T::ID
    }
    fn state_version(&self) -> u16 {
        T::VERSION
    }
    fn save_state(&self) -> Vec<u8> {
        save_to_vec(self)
    }
    fn restore_state(&mut self, version: u16, data: &[u8]) -> Result<(), StateError> {
        restore_from(self, version, data)
    }
}

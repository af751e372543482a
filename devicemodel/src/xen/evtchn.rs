//! `/dev/xen/evtchn`: event channels bound into this process.
//!
//! ABI (Linux `include/uapi/xen/evtchn.h`): ioctls `_IOC(_IOC_NONE, 'E', nr, sizeof(arg))`; the
//! bind ioctls return the new local port. Reading the fd yields pending local ports as `u32`s
//! (each delivered port stays masked until its number is written back to the fd).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use super::privcmd::ioc_none;

pub const EVTCHN_PATH: &str = "/dev/xen/evtchn";

/// `struct ioctl_evtchn_bind_interdomain`.
#[repr(C)]
struct BindInterdomain {
    remote_domain: u32,
    remote_port: u32,
}
/// `struct ioctl_evtchn_unbind` / `struct ioctl_evtchn_notify`.
#[repr(C)]
struct PortArg {
    port: u32,
}
/// `struct ioctl_evtchn_restrict_domid`.
#[repr(C)]
struct RestrictDomid {
    domid: u16,
}

const IOCTL_EVTCHN_BIND_INTERDOMAIN: libc::Ioctl = ioc_none(b'E', 1, std::mem::size_of::<BindInterdomain>());
const IOCTL_EVTCHN_UNBIND: libc::Ioctl = ioc_none(b'E', 3, std::mem::size_of::<PortArg>());
const IOCTL_EVTCHN_NOTIFY: libc::Ioctl = ioc_none(b'E', 4, std::mem::size_of::<PortArg>());
const IOCTL_EVTCHN_RESTRICT_DOMID: libc::Ioctl = ioc_none(b'E', 6, std::mem::size_of::<RestrictDomid>());

/// Sending and acknowledging events: what the ioreq loop needs of an event channel device (so its
/// handshake can be tested without one).
pub trait EventChannels: Send + Sync {
    fn notify(&self, port: u32) -> io::Result<()>;
    fn unmask(&self, port: u32) -> io::Result<()>;
}

/// An open event channel device.
#[derive(Debug)]
pub struct Evtchn {
    file: File,
}

impl Evtchn {
    pub fn open() -> Result<Self, String> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(EVTCHN_PATH)
            .map(|file| Evtchn { file })
            .map_err(|e| format!("{EVTCHN_PATH}: {e}: event channels unavailable (load xen-evtchn)"))
    }

    fn ioctl<T>(&self, request: libc::Ioctl, arg: &T) -> io::Result<i32> {
        // SAFETY: `arg` is a live, properly laid out `#[repr(C)]` argument of the size encoded in
        // `request`; the evtchn driver only reads it.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request, arg as *const T) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc)
    }

    /// Binds a local port to `remote_port` of `domid`; returns the local port.
    pub fn bind_interdomain(&self, domid: u16, remote_port: u32) -> io::Result<u32> {
        self.ioctl(IOCTL_EVTCHN_BIND_INTERDOMAIN, &BindInterdomain { remote_domain: domid as u32, remote_port })
            .map(|p| p as u32)
    }

    pub fn unbind(&self, port: u32) -> io::Result<()> {
        self.ioctl(IOCTL_EVTCHN_UNBIND, &PortArg { port }).map(drop)
    }

    /// Only binds to `domid` are possible from now on (`-xen-domid-restrict`); irreversible.
    pub fn restrict(&self, domid: u16) -> io::Result<()> {
        self.ioctl(IOCTL_EVTCHN_RESTRICT_DOMID, &RestrictDomid { domid }).map(drop)
    }

    /// Blocks for the next pending local port.
    pub fn pending(&self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        (&self.file).read_exact(&mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    /// Waits up to `timeout` for the fd to become readable, then reads one pending port.
    pub fn wait_pending(&self, timeout: Duration) -> io::Result<Option<u32>> {
        let mut pfd = libc::pollfd { fd: self.file.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd that lives across the call.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
        }
        if rc == 0 {
            return Ok(None);
        }
        self.pending().map(Some)
    }
}

impl EventChannels for Evtchn {
    fn notify(&self, port: u32) -> io::Result<()> {
        self.ioctl(IOCTL_EVTCHN_NOTIFY, &PortArg { port }).map(drop)
    }

    /// Re-enables delivery of `port` (writing its number to the fd).
    fn unmask(&self, port: u32) -> io::Result<()> {
        (&self.file).write_all(&port.to_ne_bytes())
    }
}

impl AsRawFd for Evtchn {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        assert_eq!(std::mem::size_of::<BindInterdomain>(), 8);
        assert_eq!(std::mem::size_of::<RestrictDomid>(), 2);
        assert_eq!(IOCTL_EVTCHN_BIND_INTERDOMAIN, 0x0008_4501);
        assert_eq!(IOCTL_EVTCHN_UNBIND, 0x0004_4503);
        assert_eq!(IOCTL_EVTCHN_NOTIFY, 0x0004_4504);
        assert_eq!(IOCTL_EVTCHN_RESTRICT_DOMID, 0x0002_4506);
    }

    #[test]
    fn opening_without_xen_explains_what_is_missing() {
        if std::path::Path::new(EVTCHN_PATH).exists() {
            return;
        }
        let e = Evtchn::open().unwrap_err();
        assert!(e.contains(EVTCHN_PATH), "{e}");
    }
}

//! Pseudo-terminals for `-serial pty` (libxl's default `serial='pty'`): the guest's serial port
//! on a pty whose name QMP `query-chardev` reports as `pty:/dev/pts/N`, which libxl writes to
//! xenstore for `xl console`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

/// The master side of a pty, shared by the serial port (output) and a reader thread (input).
pub struct Pty {
    master: File,
    pub slave_path: String,
}

impl Pty {
    pub fn open() -> Result<Arc<Pty>, String> {
        // SAFETY: posix_openpt has no memory-safety preconditions; the returned fd is checked.
        let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!("cannot open a pty: {}", io::Error::last_os_error()));
        }
        // SAFETY: `fd` is a freshly opened descriptor that nothing else owns.
        let master = unsafe { File::from_raw_fd(fd) };
        let mut name = [0 as libc::c_char; 128];
        // SAFETY: grantpt/unlockpt take a valid master fd; ptsname_r writes at most `name.len()`
        // bytes (NUL-terminated) into the buffer we own.
        let ok = unsafe {
            libc::grantpt(fd) == 0 && libc::unlockpt(fd) == 0 && libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) == 0
        };
        if !ok {
            return Err(format!("cannot set up the pty: {}", io::Error::last_os_error()));
        }
        let slave_path = name.iter().take_while(|&&c| c != 0).map(|&c| c as u8 as char).collect::<String>();
        // Raw mode, so the guest's bytes pass unchanged (as QEMU's pty chardev does).
        // SAFETY: termios is plain data; tcgetattr fills it from a valid fd before use.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) == 0 {
                libc::cfmakeraw(&mut t);
                libc::tcsetattr(fd, libc::TCSANOW, &t);
            }
            // Output must never block a vCPU when nobody reads the pty: bytes beyond the
            // kernel's buffer are dropped, as on a real serial line without a listener.
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        Ok(Arc::new(Pty { master, slave_path }))
    }

    /// Waits up to `timeout_ms` for input and reads what there is (0 bytes: nothing yet, or no
    /// one has the slave open).
    pub fn read_input(&self, buf: &mut [u8], timeout_ms: i32) -> io::Result<usize> {
        let mut pfd = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n <= 0 || pfd.revents & libc::POLLIN == 0 {
            if pfd.revents & libc::POLLHUP != 0 {
                // No slave open: poll returns at once; do not spin.
                std::thread::sleep(std::time::Duration::from_millis(timeout_ms.max(0) as u64));
            }
            return Ok(0);
        }
        match (&self.master).read(buf) {
            Ok(n) => Ok(n),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EIO)) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// The serial port's output into a pty.
pub struct PtyWriter(pub Arc<Pty>);

impl Write for PtyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match (&self.0.master).write(buf) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EIO)) => Ok(buf.len()),
            other => other,
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_the_pty_both_ways_and_output_never_blocks() {
        let pty = Pty::open().unwrap();
        assert!(pty.slave_path.starts_with("/dev/pts/"), "{}", pty.slave_path);
        let mut w = PtyWriter(pty.clone());
        // Nobody has the slave open: a lot of output is accepted without blocking.
        for _ in 0..1000 {
            w.write_all(&[b'x'; 512]).unwrap();
        }
        let mut slave = std::fs::OpenOptions::new().read(true).write(true).open(&pty.slave_path).unwrap();
        slave.write_all(b"hi").unwrap();
        let mut buf = [0u8; 16];
        let n = pty.read_input(&mut buf, 1000).unwrap();
        assert_eq!(&buf[..n], b"hi");
    }
}

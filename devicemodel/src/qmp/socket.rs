//! Unix socket plumbing: receiving SCM_RIGHTS descriptors with the command bytes, and adopting
//! an inherited listening socket. The only `unsafe` of the QMP server lives here.

use std::io::{self, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};

use rustix::net::{recvmsg, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags};

/// Descriptors accepted with one read. QEMU's socket chardev accepts up to TCP_MAX_FDS = 16;
/// the kernel closes any that do not fit the control buffer (and sets MSG_CTRUNC).
pub(crate) const MAX_FDS_PER_READ: usize = 16;

/// Reads bytes from `sock`, appending any descriptors that came with them to `fds`. libxl attaches
/// the fd for add-fd to the first byte of the command (libxl_qmp.c qmp_ev_callback_writable), so
/// every read must be a recvmsg with room for control data.
pub(crate) fn recv_with_fds(sock: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS_PER_READ))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    // CMSG_CLOEXEC: descriptors we hold must not leak into anything we might spawn.
    let msg = recvmsg(sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC).map_err(io::Error::from)?;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(received) = m {
            fds.extend(received);
        }
    }
    if msg.flags.contains(ReturnFlags::CTRUNC) {
        log::warn!("QMP client sent more than {MAX_FDS_PER_READ} file descriptors at once; the rest were dropped");
    }
    Ok(msg.bytes)
}

/// Takes ownership of inherited descriptor `fd`, which must be a listening Unix stream socket
/// (libxl creates, binds and listens on it before exec and passes `-chardev socket,fd=N`).
pub(crate) fn adopt_listener_fd(fd: i32) -> Result<UnixListener, String> {
    if fd < 0 {
        return Err(format!("fd={fd} is not a file descriptor"));
    }
    // SAFETY: fcntl(F_GETFD) only queries the descriptor table; it is sound for any integer and
    // tells us whether `fd` is open before we claim it.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(format!("fd={fd} is not an open file descriptor: {}", io::Error::last_os_error()));
    }
    // `fd` was handed to this process on its command line for the monitor alone, and
    // QmpServer::start rejects a list naming the same fd twice.
    // SAFETY: `fd` is open (checked above) and this is its only owner, closing it exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let domain = rustix::net::sockopt::socket_domain(owned.as_fd());
    let listening = rustix::net::sockopt::socket_acceptconn(owned.as_fd());
    match (domain, listening) {
        (Ok(AddressFamily::UNIX), Ok(true)) => {}
        _ => {
            // Not ours to close after all: it is something else the parent passed, or garbage.
            // Leaving it open is harmless; closing an fd we do not understand is not.
            std::mem::forget(owned);
            return Err(format!("fd={fd} is not a listening Unix socket"));
        }
    }
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC).map_err(|e| format!("fd={fd}: {e}"))?;
    Ok(UnixListener::from(owned))
}

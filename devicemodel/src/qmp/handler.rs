//! The interface between the QMP server and whoever implements commands (the machine).

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::error::QmpError;
use super::events::EventSender;
use super::fdset::FdSets;

/// Executes QMP commands the server does not handle itself.
///
/// Called on the connection's thread, one command at a time per connection, concurrently across
/// connections. Return [`QmpError::command_not_found`] for names you do not implement (libxl's
/// fallbacks depend on the class).
pub trait QmpHandler: Send + Sync {
    fn execute(&self, ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError>;

    /// The command names this handler implements, for `query-commands`.
    fn command_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// Tries handlers in order; the first that does not answer `CommandNotFound` wins. This is how the
/// machine composes [`super::RunStateCommands`] with its block, PCI and migration commands.
#[derive(Clone, Default)]
pub struct HandlerChain {
    handlers: Vec<Arc<dyn QmpHandler>>,
}

impl HandlerChain {
    pub fn new() -> Self {
        HandlerChain::default()
    }

    pub fn with(mut self, handler: Arc<dyn QmpHandler>) -> Self {
        self.handlers.push(handler);
        self
    }
}

impl QmpHandler for HandlerChain {
    fn execute(&self, ctx: &CommandContext<'_>, name: &str, args: &Map<String, Value>) -> Result<Value, QmpError> {
        for h in &self.handlers {
            match h.execute(ctx, name, args) {
                Err(e) if e.is_command_not_found() => continue,
                other => return other,
            }
        }
        Err(QmpError::command_not_found(name))
    }

    fn command_names(&self) -> Vec<&'static str> {
        self.handlers.iter().flat_map(|h| h.command_names()).collect()
    }
}

/// At most this many received descriptors wait per connection (QEMU's socket chardev keeps at
/// most TCP_MAX_FDS = 16 from one read); when more arrive, the oldest are closed.
pub const MAX_PENDING_FDS: usize = 16;
/// At most this many `getfd` names per connection.
pub const MAX_NAMED_FDS: usize = 64;

/// Descriptors a connection received over SCM_RIGHTS and has not used yet. Dropped (closed) with
/// the connection.
#[derive(Default)]
pub(crate) struct ConnectionFds {
    pending: VecDeque<OwnedFd>,
    named: BTreeMap<String, OwnedFd>,
}

impl ConnectionFds {
    pub(crate) fn received(&mut self, fds: impl IntoIterator<Item = OwnedFd>) {
        for fd in fds {
            if self.pending.len() >= MAX_PENDING_FDS {
                log::warn!("QMP client sent more than {MAX_PENDING_FDS} unused file descriptors; closing the oldest");
                self.pending.pop_front();
            }
            self.pending.push_back(fd);
        }
    }

    pub(crate) fn take_pending(&mut self) -> Option<OwnedFd> {
        self.pending.pop_front()
    }

    pub(crate) fn insert_named(&mut self, name: &str, fd: OwnedFd) -> Result<(), QmpError> {
        if !self.named.contains_key(name) && self.named.len() >= MAX_NAMED_FDS {
            return Err(QmpError::generic(format!("Too many named file descriptors (at most {MAX_NAMED_FDS})")));
        }
        // QEMU's monitor_add_fd replaces (and closes) an fd of the same name.
        self.named.insert(name.to_owned(), fd);
        Ok(())
    }

    pub(crate) fn take_named(&mut self, name: &str) -> Option<OwnedFd> {
        self.named.remove(name)
    }
}

/// What a command can reach besides its arguments.
pub struct CommandContext<'a> {
    monitor: &'a str,
    fdsets: &'a Arc<FdSets>,
    events: &'a EventSender,
    fds: &'a RefCell<ConnectionFds>,
}

impl<'a> CommandContext<'a> {
    pub(crate) fn new(
        monitor: &'a str,
        fdsets: &'a Arc<FdSets>,
        events: &'a EventSender,
        fds: &'a RefCell<ConnectionFds>,
    ) -> Self {
        CommandContext { monitor, fdsets, events, fds }
    }

    /// The label of the monitor the command came in on (the chardev id, e.g. "libxl-cmd").
    pub fn monitor(&self) -> &str {
        self.monitor
    }

    /// The fd sets; resolve `/dev/fdset/N` file names with [`FdSets::open_fdset_path`].
    pub fn fdsets(&self) -> &Arc<FdSets> {
        self.fdsets
    }

    pub fn events(&self) -> &EventSender {
        self.events
    }

    /// Takes the oldest descriptor the client passed over SCM_RIGHTS and no command used yet
    /// (for commands that take "the fd sent with this command").
    pub fn take_received_fd(&self) -> Option<OwnedFd> {
        self.fds.borrow_mut().take_pending()
    }

    /// Takes a descriptor the client named with `getfd` (e.g. for `migrate` "fd:NAME").
    pub fn take_named_fd(&self, name: &str) -> Option<OwnedFd> {
        self.fds.borrow_mut().take_named(name)
    }

    pub(crate) fn connection_fds(&self) -> &RefCell<ConnectionFds> {
        self.fds
    }
}

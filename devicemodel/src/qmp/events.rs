//! Asynchronous events (QMP spec, "Asynchronous events"): broadcast to every connection that has
//! completed capabilities negotiation; a connection still in negotiation mode receives none
//! (QEMU's monitor_qapi_event_emit skips monitors in that mode).

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::Value;

use super::wire::event_message;

/// A line queued for one connection's writer.
pub(crate) type Outgoing = Arc<str>;

struct Subscriber {
    connection: u64,
    queue: SyncSender<Outgoing>,
}

/// Cloneable handle that emits QMP events. Cheap to clone; usable from any thread (vCPU threads,
/// the machine loop). Sending never blocks: a client whose output queue is full because it stopped
/// reading misses the event (logged), so a stuck client cannot stall the guest.
#[derive(Clone, Default)]
pub struct EventSender {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

impl EventSender {
    /// A sender with no connections yet; pass it to [`super::QmpServer::start_with`] to share it
    /// with the server.
    pub fn new() -> Self {
        EventSender::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Emits event `name`. `data` must be a JSON object, or `Value::Null` for events without data
    /// (QEMU omits the member then, e.g. for STOP and RESUME).
    pub fn send(&self, name: &str, data: Value) {
        let data = match data {
            Value::Null => None,
            Value::Object(m) => Some(m),
            other => {
                log::warn!("QMP event {name}: data must be an object, not {other}; sending the event without data");
                None
            }
        };
        let line: Outgoing = event_message(name, data.as_ref(), SystemTime::now()).into();
        self.lock().retain(|s| match s.queue.try_send(line.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                log::warn!("QMP connection {} is not reading its output; dropped event {name}", s.connection);
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }

    /// Number of connections that currently receive events.
    pub fn subscribers(&self) -> usize {
        self.lock().len()
    }

    /// Queues `reply` (the answer to qmp_capabilities) and subscribes the connection, atomically
    /// with respect to `send`: no event precedes the reply, and none emitted after the client
    /// could have read the reply is missed. Returns false if the connection's writer is gone.
    pub(crate) fn subscribe_after(&self, connection: u64, queue: SyncSender<Outgoing>, reply: Outgoing) -> bool {
        let mut subscribers = self.lock();
        let reply = match queue.try_send(reply) {
            Ok(()) => {
                subscribers.push(Subscriber { connection, queue });
                return true;
            }
            Err(TrySendError::Disconnected(_)) => return false,
            Err(TrySendError::Full(reply)) => reply,
        };
        // The client is not reading its output. Wait for room without holding the lock (that
        // would block every event emitter); only events emitted during this wait are missed, by a
        // client that ignores its output anyway.
        drop(subscribers);
        if queue.send(reply).is_err() {
            return false;
        }
        self.lock().push(Subscriber { connection, queue });
        true
    }

    pub(crate) fn unsubscribe(&self, connection: u64) {
        self.lock().retain(|s| s.connection != connection);
    }
}

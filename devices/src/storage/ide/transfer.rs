//! One bus-master transfer in flight: the data movement of a DMA command, run off the vCPU
//! thread, and the hand-over of its result back to the channel.
//!
//! The vCPU's write of Start (SFF-8038i section 3.1.1) walks the PRD table, builds a
//! [`Transfer`] and queues it on the channel's I/O worker, then returns: the guest sees BM Active
//! and the drive's DRQ until the worker has moved the data and completed the command (BM status,
//! ATA status, INTRQ) under the controller's lock.
//!
//! Whoever holds the controller's lock can end a transfer early without racing the worker:
//! * [`Transfer::cancel`] (reset, SRST, EXECUTE DEVICE DIAGNOSTIC, medium removed, disk
//!   unplugged): a transfer still queued never runs; one running is waited for, so no byte of
//!   guest memory or of the image changes after the call returns.
//! * [`Transfer::drain`] (the guest clears Start, or the state is saved): a queued transfer runs
//!   on the caller's thread, a running one is waited for, and the caller completes the command
//!   as if the transfer had ended just before (a legal ordering: the guest cannot tell).
//!
//! The data phase never takes the controller's lock, so waiting for it under that lock cannot
//! deadlock; the worker's completion step then finds the channel no longer pointing at this
//! transfer and does nothing.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::busmaster::DmaFault;
use super::drive::{DeviceIoError, DmaData};
use crate::memory::{Access, GuestMemory, MemoryError};

pub type TransferResult = Result<(), DmaFault<DeviceIoError>>;

/// What the data phase needs: everything is owned, so it can run on any thread.
pub struct TransferIo {
    pub mem: Arc<dyn GuestMemory>,
    /// (guest address, bytes) from the PRD table, in order, totalling the command's length.
    pub regions: Vec<(u64, usize)>,
    pub to_memory: bool,
    pub data: DmaData,
}

impl TransferIo {
    /// Moves the data: one scatter list over every region, straight between the image and
    /// guest memory (no partial effects if a region is not RAM).
    pub fn run(mut self) -> TransferResult {
        let access = if self.to_memory { Access::Write } else { Access::Read };
        let mut device: Result<(), DeviceIoError> = Ok(());
        let (to_memory, data) = (self.to_memory, &mut self.data);
        self.mem.with_slices(&self.regions, access, &mut |slices| device = data.transfer(to_memory, slices)).map_err(
            |e| DmaFault::NotRam {
                gpa: match e {
                    MemoryError::NotRam { gpa, .. } => gpa,
                    MemoryError::Overflow => u64::MAX,
                },
            },
        )?;
        device.map_err(DmaFault::Device)
    }
}

enum Phase {
    Queued(Box<TransferIo>),
    Running,
    Finished(TransferResult),
    /// Cancelled, or its result was taken.
    Over,
}

pub struct Transfer {
    phase: Mutex<Phase>,
    done: Condvar,
}

impl Transfer {
    pub fn new(io: TransferIo) -> Arc<Transfer> {
        Arc::new(Transfer { phase: Mutex::new(Phase::Queued(Box::new(io))), done: Condvar::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the data phase on this thread unless someone else claimed it or it was cancelled.
    pub fn run(&self) {
        let io = {
            let mut phase = self.lock();
            match std::mem::replace(&mut *phase, Phase::Running) {
                Phase::Queued(io) => io,
                other => {
                    *phase = other;
                    return;
                }
            }
        };
        let result = io.run();
        *self.lock() = Phase::Finished(result);
        self.done.notify_all();
    }

    fn wait_while_running(&self) -> MutexGuard<'_, Phase> {
        let mut phase = self.lock();
        while matches!(*phase, Phase::Running) {
            phase = self.done.wait(phase).unwrap_or_else(|e| e.into_inner());
        }
        phase
    }

    /// The result, once the data phase finished; `None` before, or if already taken/cancelled.
    pub fn take_result(&self) -> Option<TransferResult> {
        let mut phase = self.lock();
        match std::mem::replace(&mut *phase, Phase::Over) {
            Phase::Finished(r) => Some(r),
            other => {
                *phase = other;
                None
            }
        }
    }

    /// Ends the transfer without its result; returns once nothing of it can still run.
    pub fn cancel(&self) {
        *self.wait_while_running() = Phase::Over;
    }

    /// Finishes the data phase now (here, or by waiting for the worker) and returns its result.
    pub fn drain(&self) -> Option<TransferResult> {
        self.run();
        let mut phase = self.wait_while_running();
        match std::mem::replace(&mut *phase, Phase::Over) {
            Phase::Finished(r) => Some(r),
            _ => None,
        }
    }
}

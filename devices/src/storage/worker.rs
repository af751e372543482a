//! Where storage I/O runs when it must not run on the vCPU thread.
//!
//! A controller hands each bus-master transfer to an [`IoWorker`] as a job; the job moves the
//! data between the image and guest memory and then completes the command (status, interrupt)
//! under the controller's lock. What runs the jobs is the host's business: the device model
//! gives every IDE channel a thread of its own (`devicemodel::block::IoThread`); unit tests use
//! [`ManualWorker`] to hold jobs back and observe the guest-visible state while a transfer is in
//! flight. Devices never create threads themselves.

use std::collections::VecDeque;
use std::sync::Mutex;

pub type Job = Box<dyn FnOnce() + Send>;

pub trait IoWorker: Send + Sync {
    /// Queues `job` to run soon on another thread, in submission order. Must not run it on the
    /// calling thread: the caller holds the controller's lock, which the job takes.
    fn submit(&self, job: Job);
}

/// Runs jobs only when told to: a deterministic stand-in for a worker thread in tests.
#[derive(Default)]
pub struct ManualWorker {
    jobs: Mutex<VecDeque<Job>>,
}

impl ManualWorker {
    /// Jobs waiting.
    pub fn pending(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs jobs, including any they submit, until none is left; returns how many ran.
    pub fn run_pending(&self) -> usize {
        let mut n = 0;
        loop {
            let job = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
            let Some(job) = job else { return n };
            job();
            n += 1;
        }
    }
}

impl IoWorker for ManualWorker {
    fn submit(&self, job: Job) {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).push_back(job);
    }
}

//! The Xen backend (work in progress; wired into the machine in a follow-up).
#![allow(dead_code)]

pub mod dmop;
pub mod evtchn;
pub mod interrupts;
pub mod ioreq;
pub mod ioreq_server;
pub mod memory;
pub mod privcmd;

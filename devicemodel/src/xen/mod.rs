//! The Xen backend (work in progress; wired into the machine in a follow-up).
#![allow(dead_code)]

pub mod dmop;
pub mod evtchn;
pub mod ioreq;
pub mod privcmd;

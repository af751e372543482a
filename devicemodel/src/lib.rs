//! `devicemodel` as a library: machine assembly, the KVM and Xen backends, QMP, the QEMU-syntax
//! command line and migration. The binary (`main.rs`) only parses arguments and runs a
//! [`session::Session`]; fuzzers and tests link this crate instead of including its sources.

pub mod block;
pub mod cli;
pub mod console;
pub mod event_loop;
pub mod guest_ram;
pub mod kvm;
pub mod logging;
pub mod machine;
pub mod migration;
pub mod monitor;
pub mod pty;
pub mod qmp;
pub mod registry;
pub mod session;
pub mod signals;
pub mod vnc;
pub mod xen;
pub mod xen_machine;

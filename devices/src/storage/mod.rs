//! Storage: block backends and the disk controllers that expose them to the guest.

pub mod block;
pub mod ide;
pub mod scsi_sense;
pub mod worker;

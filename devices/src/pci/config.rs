//! Type-0 configuration space (placeholder: filled in by the PCI core work).
pub struct ConfigSpace;

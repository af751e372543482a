//! MSI-X capability, table and PBA (PCI 3.0 section 6.8.2).

//! MSI capability (PCI 3.0 section 6.8.1).

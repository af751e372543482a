//! Nested-QEMU test harness (see tests/README.md).

//! Register layout of QEMU's `edu` educational PCI device (QEMU docs/specs/edu.rst): a
//! device with a liveness register, a factorial unit, an interrupt raise/acknowledge pair and a
//! small DMA engine, made for writing and testing drivers. Same IDs and layout as QEMU's, so the
//! same guest test programs run on both.

pub const VENDOR_ID: u16 = 0x1234;
pub const DEVICE_ID: u16 = 0x11e8;
pub const REVISION: u8 = 0x10;
/// Base class 0x00ff: "device does not fit any defined class".
pub const CLASS: u8 = 0x00;
pub const SUBCLASS: u8 = 0xff;

/// BAR0: 1 MiB of MMIO.
pub const MMIO_BAR: u8 = 0;
pub const MMIO_SIZE: u64 = 1 << 20;

// Registers (offsets in BAR0). Below 0x80 only 4-byte accesses; from 0x80 4 or 8 bytes.
/// Identification 0xRRrr00ed: major version 1, minor 0.
pub const IDENT: u64 = 0x00;
pub const IDENT_VALUE: u32 = 0x0100_00ed;
/// Card liveness check: reads the bitwise inverse of the last value written.
pub const LIVENESS: u64 = 0x04;
/// Factorial: writing starts computing the factorial of the value; reading gives the result.
pub const FACTORIAL: u64 = 0x08;
/// Status: bit 0 (read-only) factorial computing, bit 7 raise interrupt 0x1 when it finishes.
pub const STATUS: u64 = 0x20;
pub const STATUS_COMPUTING: u32 = 0x01;
pub const STATUS_IRQ_FACTORIAL: u32 = 0x80;
/// Interrupt status: the OR of the values that raised the interrupt.
pub const IRQ_STATUS: u64 = 0x24;
/// Interrupt raise: ORs the value into the interrupt status and interrupts.
pub const IRQ_RAISE: u64 = 0x60;
/// Interrupt acknowledge: clears the value's bits; the interrupt drops when none remain.
pub const IRQ_ACK: u64 = 0x64;
pub const DMA_SOURCE: u64 = 0x80;
pub const DMA_DESTINATION: u64 = 0x88;
pub const DMA_COUNT: u64 = 0x90;
/// DMA command: bit 0 start (reads 1 while running), bit 1 direction (0: RAM to the device's
/// buffer, 1: buffer to RAM), bit 2 raise interrupt 0x100 when done.
pub const DMA_COMMAND: u64 = 0x98;
pub const DMA_RUN: u64 = 0x1;
pub const DMA_TO_RAM: u64 = 0x2;
pub const DMA_IRQ: u64 = 0x4;

/// Interrupt status values the device raises itself.
pub const IRQ_FACTORIAL_DONE: u32 = 0x0000_0001;
pub const IRQ_DMA_DONE: u32 = 0x0000_0100;

/// The DMA buffer in the device's own address space.
pub const DMA_BUFFER_START: u64 = 0x40000;
pub const DMA_BUFFER_SIZE: u64 = 4096;
/// Default DMA mask: the engine drives 28 address bits.
pub const DMA_MASK: u64 = (1 << 28) - 1;

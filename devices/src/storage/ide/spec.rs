//! ATA register layout, bits and command codes (ATA/ATAPI-6, T13/1410D) and the ATAPI interrupt
//! reason bits (SFF-8020i section 5.2.4 / ATA/ATAPI-6 section 7.15). Only what this emulation uses.

/// Command block register offsets from the channel's command block base (ATA/ATAPI-6 section 7.1,
/// table 3).
pub mod reg {
    pub const DATA: u64 = 0;
    /// Error on read, Features on write.
    pub const ERROR_FEATURES: u64 = 1;
    /// Sector Count; for PACKET devices the Interrupt Reason on read.
    pub const SECTOR_COUNT: u64 = 2;
    /// LBA Low (Sector Number in CHS mode).
    pub const LBA_LOW: u64 = 3;
    /// LBA Mid (Cylinder Low); for PACKET devices the Byte Count low half.
    pub const LBA_MID: u64 = 4;
    /// LBA High (Cylinder High); for PACKET devices the Byte Count high half.
    pub const LBA_HIGH: u64 = 5;
    pub const DEVICE: u64 = 6;
    /// Status on read, Command on write.
    pub const STATUS_COMMAND: u64 = 7;
    /// Number of command block ports.
    pub const COMMAND_BLOCK_LEN: u64 = 8;
}

/// Status register bits (ATA/ATAPI-6 section 7.15).
pub mod status {
    pub const BSY: u8 = 0x80;
    pub const DRDY: u8 = 0x40;
    pub const DF: u8 = 0x20;
    /// Device Seek Complete (obsolete in ATA-6 but still reported by every emulation and expected
    /// by old drivers as part of the idle status 0x50).
    pub const DSC: u8 = 0x10;
    pub const DRQ: u8 = 0x08;
    pub const ERR: u8 = 0x01;
    /// What an idle ATA device reports.
    pub const READY: u8 = DRDY | DSC;
}

/// Error register bits (ATA/ATAPI-6 section 7.9).
pub mod error {
    pub const UNC: u8 = 0x40;
    pub const IDNF: u8 = 0x10;
    pub const ABRT: u8 = 0x04;
    /// The diagnostic code "device 0 passed, device 1 passed or not present" (section 9.12 / table 26).
    pub const DIAGNOSTIC_PASSED: u8 = 0x01;
}

/// Device Control register bits (ATA/ATAPI-6 section 7.8).
pub mod control {
    /// Interrupt disable: the device does not drive INTRQ.
    pub const NIEN: u8 = 0x02;
    /// Software reset of both devices on the channel.
    pub const SRST: u8 = 0x04;
    /// High Order Byte: reads return the previous contents of the LBA48 register FIFO.
    pub const HOB: u8 = 0x80;
}

/// Device register bits (ATA/ATAPI-6 section 7.10).
pub mod device {
    pub const LBA: u8 = 0x40;
    pub const DEV: u8 = 0x10;
    /// Bits 3:0: head number (CHS) or LBA bits 27:24.
    pub const HEAD_MASK: u8 = 0x0f;
}

/// Interrupt Reason register of PACKET devices (ATA/ATAPI-6 section 7.15 packet, SFF-8020i 5.2.4).
pub mod reason {
    /// Command or Data: 1 = the transfer is a command packet or the final status.
    pub const COD: u8 = 0x01;
    /// Direction: 1 = to the host.
    pub const IO: u8 = 0x02;
    /// The tag field above these bits is kept.
    pub const MASK: u8 = 0x07;
}

/// ATA command codes (ATA/ATAPI-6 chapter 8).
pub mod cmd {
    pub const DEVICE_RESET: u8 = 0x08;
    pub const RECALIBRATE: u8 = 0x10;
    pub const READ_SECTORS: u8 = 0x20;
    pub const READ_SECTORS_NO_RETRY: u8 = 0x21;
    pub const READ_SECTORS_EXT: u8 = 0x24;
    pub const READ_DMA_EXT: u8 = 0x25;
    pub const READ_MULTIPLE_EXT: u8 = 0x29;
    pub const WRITE_SECTORS: u8 = 0x30;
    pub const WRITE_SECTORS_NO_RETRY: u8 = 0x31;
    pub const WRITE_SECTORS_EXT: u8 = 0x34;
    pub const WRITE_DMA_EXT: u8 = 0x35;
    pub const WRITE_MULTIPLE_EXT: u8 = 0x39;
    pub const READ_VERIFY_SECTORS: u8 = 0x40;
    pub const READ_VERIFY_SECTORS_NO_RETRY: u8 = 0x41;
    pub const READ_VERIFY_SECTORS_EXT: u8 = 0x42;
    pub const EXECUTE_DEVICE_DIAGNOSTIC: u8 = 0x90;
    pub const INITIALIZE_DEVICE_PARAMETERS: u8 = 0x91;
    pub const STANDBY_IMMEDIATE_OLD: u8 = 0x94;
    pub const IDLE_IMMEDIATE_OLD: u8 = 0x95;
    pub const STANDBY_OLD: u8 = 0x96;
    pub const IDLE_OLD: u8 = 0x97;
    pub const CHECK_POWER_MODE_OLD: u8 = 0x98;
    pub const PACKET: u8 = 0xa0;
    pub const IDENTIFY_PACKET_DEVICE: u8 = 0xa1;
    pub const READ_MULTIPLE: u8 = 0xc4;
    pub const WRITE_MULTIPLE: u8 = 0xc5;
    pub const SET_MULTIPLE_MODE: u8 = 0xc6;
    pub const READ_DMA: u8 = 0xc8;
    pub const READ_DMA_NO_RETRY: u8 = 0xc9;
    pub const WRITE_DMA: u8 = 0xca;
    pub const WRITE_DMA_NO_RETRY: u8 = 0xcb;
    pub const STANDBY_IMMEDIATE: u8 = 0xe0;
    pub const IDLE_IMMEDIATE: u8 = 0xe1;
    pub const STANDBY: u8 = 0xe2;
    pub const IDLE: u8 = 0xe3;
    pub const CHECK_POWER_MODE: u8 = 0xe5;
    pub const FLUSH_CACHE: u8 = 0xe7;
    pub const FLUSH_CACHE_EXT: u8 = 0xea;
    pub const IDENTIFY_DEVICE: u8 = 0xec;
    pub const SET_FEATURES: u8 = 0xef;
}

/// SET FEATURES subcommands (ATA/ATAPI-6 section 8.37, table 46).
pub mod feature {
    pub const ENABLE_WRITE_CACHE: u8 = 0x02;
    pub const SET_TRANSFER_MODE: u8 = 0x03;
    pub const DISABLE_READ_LOOK_AHEAD: u8 = 0x55;
    pub const DISABLE_REVERTING_TO_DEFAULTS: u8 = 0x66;
    pub const DISABLE_WRITE_CACHE: u8 = 0x82;
    pub const ENABLE_READ_LOOK_AHEAD: u8 = 0xaa;
    pub const ENABLE_REVERTING_TO_DEFAULTS: u8 = 0xcc;
}

/// Bytes per ATA logical sector.
pub const SECTOR_SIZE: usize = 512;
/// Largest READ/WRITE MULTIPLE block this device supports (IDENTIFY word 47).
pub const MAX_MULTIPLE_SECTORS: u8 = 16;
/// Size of an ATAPI command packet (IDENTIFY PACKET DEVICE word 0 bits 1:0 = 00b).
pub const PACKET_SIZE: usize = 12;
/// The CD-ROM logical block size (MMC-3 section 4.2; ECMA-119 logical sector).
pub const CD_BLOCK_SIZE: usize = 2048;

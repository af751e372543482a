//! What a guest runs before its operating system: the machine's memory map (e820), ACPI tables,
//! Linux direct boot (PVH and the 64-bit bzImage protocol) and where a BIOS image maps.
//!
//! Everything here is hypervisor-agnostic: functions write into guest memory and return plain
//! data (for example [`linux::CpuBootState`]) that a KVM or Xen backend turns into register state.

pub mod acpi;
pub mod bios;
pub mod layout;
pub mod linux;

use std::fmt;

/// The guest memory this crate writes into: mmap-backed regions with a dirty bitmap (for live
/// migration).
pub type GuestMem = vm_memory::GuestMemoryMmap<vm_memory::bitmap::AtomicBitmap>;

/// Everything that can go wrong while preparing a guest's firmware and boot state.
#[derive(Debug)]
pub enum Error {
    /// Writing a boot structure into guest memory failed (usually: guest RAM too small).
    GuestMemory { what: &'static str, addr: u64, source: vm_memory::GuestMemoryError },
    /// The ACPI configuration cannot describe a valid machine.
    AcpiConfig(String),
    /// The ACPI tables do not fit into their reserved region.
    AcpiTablesTooLarge { size: u64, room: u64 },
    /// Reading the kernel image failed.
    KernelRead { path: String, source: std::io::Error },
    /// The kernel image is in a format we cannot boot.
    UnknownKernelFormat { path: String },
    /// The kernel is an ELF image but cannot be booted through PVH.
    ElfNotBootable { path: String, reason: &'static str },
    /// The bzImage's boot protocol lacks the 64-bit entry point.
    BzImageTooOld { path: String, version: u16 },
    /// linux-loader refused the image.
    KernelLoad { path: String, source: linux_loader::loader::Error },
    /// The kernel command line is longer than the kernel (or our buffer) accepts.
    CmdlineTooLong { len: usize, max: usize },
    /// The kernel command line contains a NUL byte.
    CmdlineHasNul,
    /// Reading the initrd failed.
    InitrdRead { path: String, source: std::io::Error },
    /// The initrd does not fit between the kernel and the end of low RAM.
    InitrdTooLarge { path: String, size: u64, room: u64 },
    /// The guest has too little RAM for what was asked.
    RamTooSmall { ram_size: u64, need: u64 },
    /// A BIOS image has a size we cannot map.
    BiosImageSize { len: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::GuestMemory { what, addr, source } => {
                write!(f, "cannot write the {what} at guest address {addr:#x}: {source} (is guest RAM large enough?)")
            }
            Error::AcpiConfig(msg) => write!(f, "invalid ACPI configuration: {msg}"),
            Error::AcpiTablesTooLarge { size, room } => write!(
                f,
                "the ACPI tables need {size} bytes but only {room} bytes are reserved for them; use fewer vCPUs"
            ),
            Error::KernelRead { path, source } => {
                write!(f, "cannot read kernel image {path}: {source}")
            }
            Error::UnknownKernelFormat { path } => {
                write!(f, "kernel image {path} is neither an ELF vmlinux with a PVH entry point nor a bzImage")
            }
            Error::ElfNotBootable { path, reason } => {
                write!(f, "kernel image {path} is an ELF file but cannot be booted: {reason}")
            }
            Error::BzImageTooOld { path, version } => write!(
                f,
                "bzImage {path} uses boot protocol {}.{:02}, which has no 64-bit entry point; \
                 a kernel with boot protocol 2.12 or newer (Linux 3.8+, x86_64) is needed",
                version >> 8,
                version & 0xff
            ),
            Error::KernelLoad { path, source } => {
                write!(
                    f,
                    "cannot load kernel image {path}: {source} (check that the image is intact and \
                     that guest RAM covers the addresses it loads at)"
                )
            }
            Error::CmdlineTooLong { len, max } => {
                write!(f, "kernel command line is {len} bytes long but at most {max} bytes are accepted")
            }
            Error::CmdlineHasNul => write!(f, "kernel command line contains a NUL byte"),
            Error::InitrdRead { path, source } => {
                write!(f, "cannot read initrd {path}: {source}")
            }
            Error::InitrdTooLarge { path, size, room } => write!(
                f,
                "initrd {path} is {size} bytes but only {room} bytes of low RAM are free above the \
                 kernel; give the guest more memory"
            ),
            Error::RamTooSmall { ram_size, need } => {
                write!(f, "guest RAM of {ram_size:#x} bytes is too small: at least {need:#x} bytes are needed")
            }
            Error::BiosImageSize { len } => {
                write!(f, "BIOS image is {len} bytes; it must be a non-empty multiple of 64 KiB and at most 16 MiB")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::GuestMemory { source, .. } => Some(source),
            Error::KernelRead { source, .. } | Error::InitrdRead { source, .. } => Some(source),
            Error::KernelLoad { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Writes `data` at `addr`, naming `what` in the error.
pub(crate) fn write_guest(mem: &GuestMem, what: &'static str, addr: u64, data: &[u8]) -> Result<(), Error> {
    use vm_memory::{Bytes, GuestAddress};
    mem.write_slice(data, GuestAddress(addr)).map_err(|source| Error::GuestMemory { what, addr, source })
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::GuestMem;
    use vm_memory::{Bytes, GuestAddress};

    /// Guest memory laid out the way the machine lays out `ram_size` bytes of RAM.
    pub fn guest_mem(ram_size: u64) -> GuestMem {
        let ranges: Vec<(GuestAddress, usize)> = crate::layout::ram_regions(ram_size)
            .into_iter()
            .map(|(gpa, len)| (GuestAddress(gpa), len as usize))
            .collect();
        GuestMem::from_ranges(&ranges).unwrap()
    }

    pub fn read(mem: &GuestMem, addr: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        mem.read_slice(&mut buf, GuestAddress(addr)).unwrap();
        buf
    }

    pub fn u16_at(b: &[u8], off: usize) -> u16 {
        u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
    }
    pub fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }
    pub fn u64_at(b: &[u8], off: usize) -> u64 {
        u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
    }
}

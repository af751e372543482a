//! What a guest runs before its operating system: the machine's memory map (e820), ACPI tables,
//! direct kernel boot (PVH for 64- and 32-bit ELF kernels, the Linux 64-bit bzImage protocol,
//! multiboot v1) and where a BIOS image maps.
//!
//! Everything here is hypervisor-agnostic: functions write into guest memory and return plain
//! data (for example [`linux::CpuBootState`]) that a KVM or Xen backend turns into register state.

pub mod acpi;
pub mod bios;
pub mod elf32;
pub mod layout;
pub mod linux;
pub mod multiboot;

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
    /// The kernel image is in a format we boot, but its contents are inconsistent or do not fit
    /// the guest (a truncated file, a segment outside RAM or in the first MiB).
    KernelImage { path: String, reason: String },
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
    /// A multiboot module (one `-initrd` entry) does not fit in RAM after the kernel.
    ModuleDoesNotFit { path: String, size: u64, room: u64 },
    /// `-initrd` names a list of multiboot modules that cannot be split.
    ModuleList { list: String, reason: &'static str },
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
            Error::UnknownKernelFormat { path } => write!(
                f,
                "kernel image {path} is neither a bzImage, a multiboot image nor an ELF file with a PVH entry point"
            ),
            Error::KernelImage { path, reason } => write!(f, "kernel image {path} cannot be booted: {reason}"),
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
            Error::ModuleDoesNotFit { path, size, room } => write!(
                f,
                "multiboot module {path} is {size} bytes but only {room} bytes of RAM below 4 GiB are free after \
                 the kernel and the modules before it; give the guest more memory (-m)"
            ),
            Error::ModuleList { list, reason } => write!(f, "-initrd {list}: {reason}"),
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
    use std::io::Write;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use vm_memory::{Bytes, GuestAddress};

    /// A file in the temp dir, removed on drop.
    pub struct TempFile {
        pub path: PathBuf,
    }

    impl TempFile {
        pub fn with_contents(bytes: &[u8]) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "firmware-test-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).unwrap();
            file.write_all(bytes).unwrap();
            TempFile { path }
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Guest memory laid out the way the machine lays out `ram_size` bytes of RAM.
    pub fn guest_mem(ram_size: u64) -> GuestMem {
        let ranges: Vec<(GuestAddress, usize)> = crate::layout::ram_regions(ram_size)
            .into_iter()
            .map(|(gpa, len)| (GuestAddress(gpa), len as usize))
            .collect();
        GuestMem::from_ranges(&ranges).unwrap()
    }

    /// One PT_LOAD segment of a test ELF32 image.
    pub struct Seg {
        pub paddr: u32,
        pub vaddr: u32,
        pub data: Vec<u8>,
        pub memsz: u32,
        pub flags: u32,
    }

    pub fn put(buf: &mut Vec<u8>, off: usize, bytes: &[u8]) {
        if buf.len() < off + bytes.len() {
            buf.resize(off + bytes.len(), 0);
        }
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// The Xen PHYS32_ENTRY note, as a 32-bit kernel carries it.
    pub fn pvh_note(entry: u32) -> Vec<u8> {
        let mut n = Vec::new();
        for v in [4u32, 4, 18] {
            n.extend_from_slice(&v.to_le_bytes());
        }
        n.extend_from_slice(b"Xen\0");
        n.extend_from_slice(&entry.to_le_bytes());
        n
    }

    /// A little-endian ELF32 image written byte by byte: header, program headers at 52, notes
    /// (if any) at 0x400 as a PT_NOTE segment, segment data from 0x2000 on.
    pub fn elf32_image(machine: u16, entry: u32, segs: &[Seg], notes: Option<&[u8]>) -> Vec<u8> {
        let mut elf = vec![0u8; 0x2000];
        put(&mut elf, 0, b"\x7fELF");
        elf[4] = 1; // ELFCLASS32
        elf[5] = 1; // ELFDATA2LSB
        elf[6] = 1; // EV_CURRENT
        put(&mut elf, 16, &2u16.to_le_bytes()); // ET_EXEC
        put(&mut elf, 18, &machine.to_le_bytes());
        put(&mut elf, 20, &1u32.to_le_bytes());
        put(&mut elf, 24, &entry.to_le_bytes());
        put(&mut elf, 28, &52u32.to_le_bytes()); // e_phoff
        put(&mut elf, 40, &52u16.to_le_bytes()); // e_ehsize
        put(&mut elf, 42, &32u16.to_le_bytes()); // e_phentsize
        let phnum = segs.len() + usize::from(notes.is_some());
        put(&mut elf, 44, &(phnum as u16).to_le_bytes());
        let mut data_off = 0x2000usize;
        let phdr = |elf: &mut Vec<u8>, i: usize, fields: [u32; 8]| {
            for (k, v) in fields.iter().enumerate() {
                put(elf, 52 + i * 32 + k * 4, &v.to_le_bytes());
            }
        };
        for (i, s) in segs.iter().enumerate() {
            let len = s.data.len() as u32;
            phdr(&mut elf, i, [1, data_off as u32, s.vaddr, s.paddr, len, s.memsz, s.flags, 0x1000]);
            put(&mut elf, data_off, &s.data);
            data_off = (data_off + s.data.len()).next_multiple_of(0x1000);
        }
        if let Some(n) = notes {
            phdr(&mut elf, segs.len(), [4, 0x400, 0, 0, n.len() as u32, n.len() as u32, 4, 4]);
            put(&mut elf, 0x400, n);
        }
        elf
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

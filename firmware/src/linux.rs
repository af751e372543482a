//! Direct kernel boot (`-kernel`): load a kernel (and initrd or modules) into guest memory, write
//! the boot protocol's structures, and describe the vCPU state the kernel must be entered with.
//!
//! Protocols, tried in QEMU's order (`x86_load_linux`: a bzImage, else a multiboot header, else
//! an ELF file with a PVH note), so an image boots the same way on both:
//! - **64-bit boot protocol** for a bzImage (Documentation/arch/x86/boot.rst, "64-bit boot
//!   protocol"): long mode with identity-mapped page tables, `rsi` = address of the zero page,
//!   entry at the protected-mode kernel's load address + 0x200.
//! - **multiboot v1** (see [`crate::multiboot`]).
//! - **PVH** for an ELF kernel, 64-bit (`vmlinux`) or 32-bit, carrying a
//!   `XEN_ELFNOTE_PHYS32_ENTRY` note (<https://xenbits.xen.org/docs/unstable/misc/pvh.html>):
//!   32-bit flat protected mode, paging off, `ebx` = address of `struct hvm_start_info`.
//!
//! The result, [`CpuBootState`], is hypervisor-agnostic: it lists register values and segment
//! descriptors; a backend copies them into its vCPU.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use linux_loader::loader::bootparam::{boot_params, setup_header};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{BzImage, KernelLoader};
use vm_memory::{ByteValued, GuestAddress};

use crate::elf32::{self, Elf32};
use crate::multiboot;
use crate::{layout, write_guest, Error, GuestMem};

/// The processor mode a kernel is entered in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// 32-bit protected mode, flat 4 GiB segments, paging off (PVH).
    /// CR0 = PE|ET (0x11), CR3 = 0, CR4 = 0, EFER = 0.
    Protected32Flat,
    /// 64-bit long mode with identity paging of the first 4 GiB (2 MiB pages).
    /// CR0 = PG|ET|PE (0x8000_0011), CR3 = [`layout::PML4_START`], CR4 = PAE (0x20),
    /// EFER = LME|LMA (0x500).
    Long64,
}

/// A segment register's full (hidden) state, in the shape KVM's `kvm_segment` takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    /// Limit in bytes (already scaled by the granularity: 0xffff_ffff for a flat 4 GiB segment).
    pub limit: u32,
    pub selector: u16,
    /// Descriptor type (bits 3:0 of the access byte), e.g. 0xb = execute/read, accessed code.
    pub type_: u8,
    pub present: bool,
    pub dpl: u8,
    /// Default operation size: 32-bit when set (must be clear for 64-bit code).
    pub db: bool,
    /// Code/data segment when set, system segment (TSS, LDT) when clear.
    pub s: bool,
    /// 64-bit code segment.
    pub l: bool,
    /// Limit granularity is 4 KiB.
    pub g: bool,
}

impl Segment {
    /// The 8-byte GDT descriptor encoding this segment (Intel SDM vol. 3, 3.4.5).
    pub fn descriptor(&self) -> u64 {
        let limit = if self.g { self.limit >> 12 } else { self.limit };
        let access = u64::from(self.type_ & 0xf)
            | u64::from(self.s) << 4
            | u64::from(self.dpl & 3) << 5
            | u64::from(self.present) << 7;
        let flags = u64::from(self.l) << 1 | u64::from(self.db) << 2 | u64::from(self.g) << 3;
        u64::from(limit & 0xffff)
            | (self.base & 0xff_ffff) << 16
            | access << 40
            | u64::from((limit >> 16) & 0xf) << 48
            | flags << 52
            | ((self.base >> 24) & 0xff) << 56
    }
}

/// Selectors of the boot GDT. 0x10/0x18 are Linux's `__BOOT_CS`/`__BOOT_DS`, which the 64-bit
/// boot protocol requires; PVH leaves the selectors unspecified and we use the same ones.
pub const BOOT_CS: u16 = 0x10;
pub const BOOT_DS: u16 = 0x18;
pub const BOOT_TSS: u16 = 0x20;

/// Everything a hypervisor backend needs to put a vCPU at a kernel's entry point.
///
/// Backend recipe (both modes):
/// - `gdt_entries` are already written at `gdt_base` in guest memory; load GDTR = (`gdt_base`,
///   `gdt_limit`) and IDTR = (`idt_base`, `idt_limit`);
/// - CS = `segments().0`; DS, ES, FS, GS, SS = `segments().1`; TR = `tss()`; LDTR unusable
///   (selector 0, not present);
/// - CR0 = `cr0`, CR3 = `cr3`, CR4 = `cr4`, EFER = `efer`, RFLAGS = `rflags`;
/// - RIP = `rip`, RSP = `rsp`, RAX = `rax`, RBX = `rbx`, RSI = `rsi`, every other general
///   register 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuBootState {
    pub mode: CpuMode,
    pub rip: u64,
    pub rsp: u64,
    /// Multiboot: the boot loader magic 0x2BADB002. 0 otherwise.
    pub rax: u64,
    /// PVH: guest-physical address of `hvm_start_info`; multiboot: of the multiboot
    /// information structure. 0 otherwise.
    pub rbx: u64,
    /// 64-bit protocol: guest-physical address of the zero page. 0 otherwise.
    pub rsi: u64,
    /// Only the always-one bit 1: interrupts disabled.
    pub rflags: u64,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    pub gdt_base: u64,
    pub gdt_limit: u16,
    /// The descriptors written at `gdt_base`, indexed by selector / 8.
    pub gdt_entries: Vec<u64>,
    /// An empty IDT: the kernel installs its own before enabling interrupts.
    pub idt_base: u64,
    pub idt_limit: u16,
}

const X86_CR0_PE: u64 = 1 << 0;
const X86_CR0_ET: u64 = 1 << 4;
const X86_CR0_PG: u64 = 1 << 31;
const X86_CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

impl CpuBootState {
    pub(crate) fn new(mode: CpuMode, rip: u64, rbx: u64, rsi: u64) -> Self {
        let (cr0, cr3, cr4, efer) = match mode {
            CpuMode::Protected32Flat => (X86_CR0_PE | X86_CR0_ET, 0, 0, 0),
            CpuMode::Long64 => {
                (X86_CR0_PE | X86_CR0_ET | X86_CR0_PG, layout::PML4_START, X86_CR4_PAE, EFER_LME | EFER_LMA)
            }
        };
        let (code, data) = Self::segments_for(mode);
        let tss = Self::tss_segment();
        // null, unused, code, data, TSS (low and high half: a long-mode TSS descriptor is 16
        // bytes; the upper half is zero for a TSS below 4 GiB).
        let gdt_entries = vec![0, 0, code.descriptor(), data.descriptor(), tss.descriptor(), 0];
        CpuBootState {
            mode,
            rip,
            rsp: layout::BOOT_STACK_POINTER,
            rax: 0,
            rbx,
            rsi,
            rflags: 0x2,
            cr0,
            cr3,
            cr4,
            efer,
            gdt_base: layout::BOOT_GDT_START,
            gdt_limit: (gdt_entries.len() * 8 - 1) as u16,
            gdt_entries,
            idt_base: 0,
            idt_limit: 0,
        }
    }

    fn segments_for(mode: CpuMode) -> (Segment, Segment) {
        let flat = Segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0,
            type_: 0,
            present: true,
            dpl: 0,
            db: true,
            s: true,
            l: false,
            g: true,
        };
        let code = Segment {
            selector: BOOT_CS,
            type_: 0xb, // execute/read, accessed
            db: mode == CpuMode::Protected32Flat,
            l: mode == CpuMode::Long64,
            ..flat
        };
        let data = Segment {
            selector: BOOT_DS,
            type_: 0x3, // read/write, accessed
            ..flat
        };
        (code, data)
    }

    fn tss_segment() -> Segment {
        Segment {
            base: 0,
            limit: 0x67,
            selector: BOOT_TSS,
            type_: 0xb, // busy 32-bit (or 64-bit) TSS
            present: true,
            dpl: 0,
            db: false,
            s: false,
            l: false,
            g: false,
        }
    }

    /// The code segment (for CS) and the data segment (for DS, ES, FS, GS, SS).
    pub fn segments(&self) -> (Segment, Segment) {
        Self::segments_for(self.mode)
    }

    /// The task register: a busy TSS at 0 with limit 0x67. VM entry requires a usable TR; the
    /// kernel loads its own before it could ever switch tasks.
    pub fn tss(&self) -> Segment {
        Self::tss_segment()
    }
}

/// `hvm_start_info.magic` (xen/include/public/arch-x86/hvm/start_info.h).
const XEN_HVM_START_MAGIC_VALUE: u32 = 0x336e_c578;
/// Protected-mode kernel offset of the 64-bit entry point (`startup_64`).
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// `xloadflags` bit: the kernel has the 64-bit entry point at +0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// `type_of_loader` for a boot loader without an assigned id.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Default `initrd_addr_max` for boot protocols before 2.03.
const DEFAULT_INITRD_ADDR_MAX: u32 = 0x37ff_ffff;
const PAGE_SIZE: u64 = 0x1000;

/// What the image turned out to be, in detection order.
enum KernelFormat {
    BzImage,
    Multiboot(multiboot::Header),
    Elf64,
    Elf32(Elf32),
}

/// What `-kernel`, `-initrd` and `-append` say, as the user gave them (multiboot passes the
/// kernel's file name to the guest, and splits `-initrd` into modules).
#[derive(Clone, Copy, Debug)]
pub struct KernelBoot<'a> {
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub cmdline: &'a str,
}

/// Loads the kernel (and initrd or multiboot modules), writes the command line and the boot
/// protocol's structures, and returns the vCPU state for entering the kernel.
///
/// `rsdp` is the RSDP's guest-physical address (see [`crate::acpi::write_acpi_tables`]).
pub fn load_kernel(mem: &GuestMem, boot: &KernelBoot, ram_size: u64, rsdp: u64) -> Result<CpuBootState, Error> {
    let path = boot.kernel.display().to_string();
    // The boot structures and ACPI tables live in the first MiB; kernels load above it.
    let need = 2 * layout::HIGH_MEMORY_START;
    if layout::low_ram_end(ram_size) < need {
        return Err(Error::RamTooSmall { ram_size, need });
    }
    let read_err = |source| Error::KernelRead { path: path.clone(), source };
    let mut kernel = File::open(boot.kernel).map_err(read_err)?;
    let kernel_len = kernel.metadata().map_err(read_err)?.len();
    let mut head = vec![0u8; multiboot::HEADER_SEARCH_LEN];
    let filled = read_full(&mut kernel, &mut head).map_err(read_err)?;
    head.truncate(filled);

    let open_initrd = || -> Result<Option<(File, String)>, Error> {
        let Some(p) = boot.initrd else { return Ok(None) };
        let name = p.display().to_string();
        let file = File::open(p).map_err(|source| Error::InitrdRead { path: name.clone(), source })?;
        Ok(Some((file, name)))
    };
    match detect_format(&head, &kernel, kernel_len, &path)? {
        KernelFormat::BzImage => {
            let initrd = open_initrd()?;
            load_bzimage(mem, &mut kernel, &path, initrd, boot.cmdline, ram_size, rsdp)
        }
        KernelFormat::Multiboot(header) => {
            multiboot::load(mem, &mut kernel, kernel_len, &head, &header, boot, ram_size)
        }
        KernelFormat::Elf64 => {
            let initrd = open_initrd()?;
            load_pvh64(mem, &mut kernel, &path, initrd, boot.cmdline, ram_size, rsdp)
        }
        KernelFormat::Elf32(elf) => {
            let initrd = open_initrd()?;
            load_pvh32(mem, &mut kernel, &path, &elf, initrd, boot.cmdline, ram_size, rsdp)
        }
    }
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn detect_format(head: &[u8], kernel: &File, kernel_len: u64, path: &str) -> Result<KernelFormat, Error> {
    if head.len() >= 0x206 && &head[0x202..0x206] == b"HdrS" {
        return Ok(KernelFormat::BzImage);
    }
    if let Some(header) = multiboot::find_header(head) {
        return header
            .map(KernelFormat::Multiboot)
            .map_err(|reason| Error::KernelImage { path: path.to_string(), reason });
    }
    if !head.starts_with(b"\x7fELF") {
        return Err(Error::UnknownKernelFormat { path: path.to_string() });
    }
    // e_ident[EI_CLASS], e_ident[EI_DATA]
    match (head.get(4), head.get(5)) {
        (Some(2), Some(1)) => Ok(KernelFormat::Elf64),
        (Some(1), Some(1)) => {
            let elf = elf32::parse(kernel, kernel_len)
                .map_err(|reason| Error::KernelImage { path: path.to_string(), reason })?;
            if elf.machine != elf32::EM_386 {
                return Err(Error::ElfNotBootable {
                    path: path.to_string(),
                    reason: "it is a 32-bit ELF file for another architecture than x86 (e_machine is not EM_386)",
                });
            }
            if elf.pvh_entry.is_none() {
                return Err(Error::ElfNotBootable {
                    path: path.to_string(),
                    reason: "it is a 32-bit ELF file with neither a PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY \
                             note) nor a multiboot header in its first 8 KiB",
                });
            }
            Ok(KernelFormat::Elf32(elf))
        }
        _ => Err(Error::ElfNotBootable {
            path: path.to_string(),
            reason: "it is neither a 64-bit nor a 32-bit little-endian ELF file",
        }),
    }
}

/// Writes the NUL-terminated command line at [`layout::CMDLINE_START`]. `max` counts the NUL.
pub(crate) fn write_cmdline(mem: &GuestMem, cmdline: &str, max: usize) -> Result<(), Error> {
    if cmdline.as_bytes().contains(&0) {
        return Err(Error::CmdlineHasNul);
    }
    if cmdline.len() + 1 > max {
        return Err(Error::CmdlineTooLong { len: cmdline.len(), max: max - 1 });
    }
    let mut bytes = Vec::with_capacity(cmdline.len() + 1);
    bytes.extend_from_slice(cmdline.as_bytes());
    bytes.push(0);
    write_guest(mem, "kernel command line", layout::CMDLINE_START, &bytes)
}

/// Places the initrd as high as possible below `end` (exclusive), page aligned, not below
/// `lowest`. Returns (guest address, size).
fn load_initrd(mem: &GuestMem, initrd: &mut File, path: &str, lowest: u64, end: u64) -> Result<(u64, u64), Error> {
    let path = path.to_string();
    let read_err = |source| Error::InitrdRead { path: path.clone(), source };
    let size = initrd.metadata().map_err(read_err)?.len();
    let lowest = lowest.next_multiple_of(PAGE_SIZE);
    let room = end.saturating_sub(lowest);
    let too_large = || Error::InitrdTooLarge { path: path.clone(), size, room };
    let addr = end.checked_sub(size).ok_or_else(too_large)? & !(PAGE_SIZE - 1);
    if addr < lowest {
        return Err(too_large());
    }
    initrd.seek(SeekFrom::Start(0)).map_err(read_err)?;
    use vm_memory::Bytes;
    mem.read_exact_volatile_from(GuestAddress(addr), initrd, size as usize).map_err(|source| match source {
        vm_memory::GuestMemoryError::IOError(e) => Error::InitrdRead { path: path.clone(), source: e },
        source => Error::GuestMemory { what: "initrd", addr, source },
    })?;
    Ok((addr, size))
}

fn load_pvh64(
    mem: &GuestMem,
    kernel: &mut File,
    path: &str,
    initrd: Option<(File, String)>,
    cmdline: &str,
    ram_size: u64,
    rsdp: u64,
) -> Result<CpuBootState, Error> {
    let loaded = Elf::load(mem, None, kernel, Some(GuestAddress(layout::HIGH_MEMORY_START)))
        .map_err(|source| Error::KernelLoad { path: path.to_string(), source })?;
    let entry = match loaded.pvh_boot_cap {
        PvhBootCapability::PvhEntryPresent(addr) => addr.0,
        _ => {
            return Err(Error::ElfNotBootable {
                path: path.to_string(),
                reason: "it has no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY note); build the \
                         kernel with CONFIG_PVH=y, or boot its bzImage instead",
            })
        }
    };
    write_pvh_boot(mem, entry, loaded.kernel_end, initrd, cmdline, ram_size, rsdp)
}

/// A 32-bit ELF kernel with a PVH note: the same boot ABI as a 64-bit one (the PVH entry is
/// 32-bit code either way), loaded by our ELF32 reader.
#[allow(clippy::too_many_arguments)]
fn load_pvh32(
    mem: &GuestMem,
    kernel: &mut File,
    path: &str,
    elf: &Elf32,
    initrd: Option<(File, String)>,
    cmdline: &str,
    ram_size: u64,
    rsdp: u64,
) -> Result<CpuBootState, Error> {
    let Some(entry) = elf.pvh_entry else {
        return Err(Error::ElfNotBootable { path: path.to_string(), reason: "it has no PVH entry point" });
    };
    let (_, kernel_end) =
        elf.load(mem, kernel, ram_size).map_err(|reason| Error::KernelImage { path: path.to_string(), reason })?;
    write_pvh_boot(mem, u64::from(entry), kernel_end, initrd, cmdline, ram_size, rsdp)
}

/// Writes the command line, the initrd and `hvm_start_info` for a loaded PVH kernel.
fn write_pvh_boot(
    mem: &GuestMem,
    entry: u64,
    kernel_end: u64,
    initrd: Option<(File, String)>,
    cmdline: &str,
    ram_size: u64,
    rsdp: u64,
) -> Result<CpuBootState, Error> {
    write_cmdline(mem, cmdline, layout::CMDLINE_MAX_SIZE)?;

    let module = match initrd {
        Some((mut file, name)) => Some(load_initrd(mem, &mut file, &name, kernel_end, layout::low_ram_end(ram_size))?),
        None => None,
    };

    // struct hvm_memmap_table_entry { u64 addr; u64 size; u32 type; u32 reserved; }
    let e820 = layout::e820_map(ram_size);
    let mut memmap = Vec::with_capacity(e820.len() * 24);
    for e in &e820 {
        memmap.extend_from_slice(&e.addr.to_le_bytes());
        memmap.extend_from_slice(&e.size.to_le_bytes());
        memmap.extend_from_slice(&(e.kind as u32).to_le_bytes());
        memmap.extend_from_slice(&0u32.to_le_bytes());
    }
    write_guest(mem, "PVH memory map", layout::PVH_MEMMAP_START, &memmap)?;

    // struct hvm_modlist_entry { u64 paddr; u64 size; u64 cmdline_paddr; u64 reserved; }
    if let Some((addr, size)) = module {
        let mut entry = Vec::with_capacity(32);
        for v in [addr, size, 0, 0] {
            entry.extend_from_slice(&v.to_le_bytes());
        }
        write_guest(mem, "PVH module list", layout::PVH_MODLIST_START, &entry)?;
    }

    // struct hvm_start_info, version 1 (56 bytes).
    let mut info = Vec::with_capacity(56);
    info.extend_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
    info.extend_from_slice(&1u32.to_le_bytes()); // version
    info.extend_from_slice(&0u32.to_le_bytes()); // flags
    info.extend_from_slice(&u32::from(module.is_some()).to_le_bytes()); // nr_modules
    let modlist = if module.is_some() { layout::PVH_MODLIST_START } else { 0 };
    info.extend_from_slice(&modlist.to_le_bytes());
    info.extend_from_slice(&layout::CMDLINE_START.to_le_bytes());
    info.extend_from_slice(&rsdp.to_le_bytes());
    info.extend_from_slice(&layout::PVH_MEMMAP_START.to_le_bytes());
    info.extend_from_slice(&(e820.len() as u32).to_le_bytes());
    info.extend_from_slice(&0u32.to_le_bytes()); // reserved
    write_guest(mem, "PVH start info", layout::PVH_START_INFO, &info)?;

    let state = CpuBootState::new(CpuMode::Protected32Flat, entry, layout::PVH_START_INFO, 0);
    write_gdt(mem, &state)?;
    Ok(state)
}

fn load_bzimage(
    mem: &GuestMem,
    kernel: &mut File,
    path: &str,
    initrd: Option<(File, String)>,
    cmdline: &str,
    ram_size: u64,
    rsdp: u64,
) -> Result<CpuBootState, Error> {
    // A bzImage is loaded whole (minus its small real-mode setup) at 1 MiB.
    let kernel_len = kernel.metadata().map_err(|source| Error::KernelRead { path: path.to_string(), source })?.len();
    let need = layout::HIGH_MEMORY_START + kernel_len;
    if layout::low_ram_end(ram_size) < need {
        return Err(Error::RamTooSmall { ram_size, need });
    }
    let loaded = BzImage::load(mem, None, kernel, Some(GuestAddress(layout::HIGH_MEMORY_START)))
        .map_err(|source| Error::KernelLoad { path: path.to_string(), source })?;
    let Some(mut hdr): Option<setup_header> = loaded.setup_header else {
        return Err(Error::UnknownKernelFormat { path: path.to_string() });
    };
    let version = hdr.version;
    let xloadflags = hdr.xloadflags;
    if version < 0x020c || xloadflags & XLF_KERNEL_64 == 0 {
        return Err(Error::BzImageTooOld { path: path.to_string(), version });
    }

    // cmdline_size (protocol 2.06+) excludes the terminating NUL.
    let cmdline_max = (hdr.cmdline_size as usize).saturating_add(1).min(layout::CMDLINE_MAX_SIZE);
    write_cmdline(mem, cmdline, cmdline_max)?;

    let kernel_load = loaded.kernel_load.0;
    if let Some((mut file, name)) = initrd {
        let initrd_addr_max = if version >= 0x0203 { hdr.initrd_addr_max } else { DEFAULT_INITRD_ADDR_MAX };
        let end = layout::low_ram_end(ram_size).min(u64::from(initrd_addr_max) + 1);
        // Keep clear of the memory the kernel decompresses into (init_size, protocol 2.10+).
        let lowest = loaded.kernel_end.max(kernel_load + u64::from(hdr.init_size));
        let (addr, size) = load_initrd(mem, &mut file, &name, lowest, end)?;
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
    }

    hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    hdr.cmd_line_ptr = layout::CMDLINE_START as u32;

    let mut params = boot_params { hdr, acpi_rsdp_addr: rsdp, ..Default::default() };
    let e820 = layout::e820_map(ram_size);
    for (slot, e) in params.e820_table.iter_mut().zip(&e820) {
        slot.addr = e.addr;
        slot.size = e.size;
        slot.r#type = e.kind as u32;
    }
    params.e820_entries = e820.len().min(params.e820_table.len()) as u8;
    write_guest(mem, "zero page", layout::ZERO_PAGE_START, params.as_slice())?;

    write_identity_page_tables(mem)?;
    let state =
        CpuBootState::new(CpuMode::Long64, kernel_load + BZIMAGE_64BIT_ENTRY_OFFSET, 0, layout::ZERO_PAGE_START);
    write_gdt(mem, &state)?;
    Ok(state)
}

pub(crate) fn write_gdt(mem: &GuestMem, state: &CpuBootState) -> Result<(), Error> {
    let bytes: Vec<u8> = state.gdt_entries.iter().flat_map(|e| e.to_le_bytes()).collect();
    write_guest(mem, "boot GDT", state.gdt_base, &bytes)
}

/// Identity-maps the first 4 GiB with 2 MiB pages: one PML4 entry, four PDPT entries, four
/// page directories of 512 entries each.
fn write_identity_page_tables(mem: &GuestMem) -> Result<(), Error> {
    const PRESENT: u64 = 1 << 0;
    const WRITABLE: u64 = 1 << 1;
    const PAGE_SIZE_2M: u64 = 1 << 7;
    const GIB: u64 = 1 << 30;

    write_guest(
        mem,
        "boot page tables (PML4)",
        layout::PML4_START,
        &(layout::PDPT_START | PRESENT | WRITABLE).to_le_bytes(),
    )?;
    let mut pdpt = Vec::with_capacity(4 * 8);
    for gib in 0..4u64 {
        let pd = layout::PD_START + gib * PAGE_SIZE;
        pdpt.extend_from_slice(&(pd | PRESENT | WRITABLE).to_le_bytes());
        let mut dir = Vec::with_capacity(512 * 8);
        for i in 0..512u64 {
            let addr = gib * GIB + (i << 21);
            dir.extend_from_slice(&(addr | PRESENT | WRITABLE | PAGE_SIZE_2M).to_le_bytes());
        }
        write_guest(mem, "boot page tables (PD)", pd, &dir)?;
    }
    write_guest(mem, "boot page tables (PDPT)", layout::PDPT_START, &pdpt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::E820Kind;
    use crate::test_util::{elf32_image, guest_mem, pvh_note, read, u32_at, u64_at, Seg, TempFile};
    use vm_memory::Bytes;

    const MIB: u64 = 1 << 20;
    const RSDP: u64 = 0xe0000;

    fn boot(
        mem: &GuestMem,
        kernel: &TempFile,
        initrd: Option<&TempFile>,
        cmdline: &str,
        ram: u64,
    ) -> Result<CpuBootState, Error> {
        let files = KernelBoot { kernel: &kernel.path, initrd: initrd.map(|t| t.path.as_path()), cmdline };
        load_kernel(mem, &files, ram, RSDP)
    }

    fn put(buf: &mut [u8], off: usize, bytes: &[u8]) {
        buf[off..off + bytes.len()].copy_from_slice(bytes);
    }

    const ELF_LOAD_ADDR: u64 = 0x100_0000;
    const ELF_SEGMENT_OFFSET: usize = 0x1000;
    const PVH_ENTRY: u32 = 0x100_0040;

    /// A minimal x86_64 vmlinux: one PT_LOAD segment of `payload` at 16 MiB and, if `pvh`, a
    /// PT_NOTE segment with a Xen PHYS32_ENTRY note.
    fn fake_vmlinux(payload: &[u8], pvh: bool) -> Vec<u8> {
        let mut elf = vec![0u8; ELF_SEGMENT_OFFSET + payload.len()];
        put(&mut elf, 0, b"\x7fELF");
        elf[4] = 2; // ELFCLASS64
        elf[5] = 1; // little endian
        elf[6] = 1; // EV_CURRENT
        put(&mut elf, 16, &2u16.to_le_bytes()); // ET_EXEC
        put(&mut elf, 18, &62u16.to_le_bytes()); // EM_X86_64
        put(&mut elf, 20, &1u32.to_le_bytes());
        put(&mut elf, 24, &ELF_LOAD_ADDR.to_le_bytes()); // e_entry
        put(&mut elf, 32, &64u64.to_le_bytes()); // e_phoff
        put(&mut elf, 52, &64u16.to_le_bytes()); // e_ehsize
        put(&mut elf, 54, &56u16.to_le_bytes()); // e_phentsize
        put(&mut elf, 56, &2u16.to_le_bytes()); // e_phnum

        let phdr = |elf: &mut Vec<u8>, idx: usize, p_type: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
            let base = 64 + idx * 56;
            put(elf, base, &p_type.to_le_bytes());
            put(elf, base + 8, &off.to_le_bytes());
            put(elf, base + 16, &paddr.to_le_bytes()); // p_vaddr
            put(elf, base + 24, &paddr.to_le_bytes()); // p_paddr
            put(elf, base + 32, &filesz.to_le_bytes());
            put(elf, base + 40, &memsz.to_le_bytes());
        };
        let len = payload.len() as u64;
        phdr(&mut elf, 0, 1, ELF_SEGMENT_OFFSET as u64, ELF_LOAD_ADDR, len, len + 0x1000);

        // Notes at 0x200: first an unrelated note, then (optionally) the PVH one.
        let mut notes = Vec::new();
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&1u32.to_le_bytes()); // NT_GNU_ABI_TAG-ish
        notes.extend_from_slice(b"GNU\0");
        notes.extend_from_slice(&[0; 4]);
        if pvh {
            notes.extend_from_slice(&4u32.to_le_bytes()); // namesz
            notes.extend_from_slice(&4u32.to_le_bytes()); // descsz
            notes.extend_from_slice(&18u32.to_le_bytes()); // XEN_ELFNOTE_PHYS32_ENTRY
            notes.extend_from_slice(b"Xen\0");
            notes.extend_from_slice(&PVH_ENTRY.to_le_bytes());
        }
        put(&mut elf, 0x200, &notes);
        phdr(&mut elf, 1, 4, 0x200, 0, notes.len() as u64, notes.len() as u64);
        put(&mut elf, ELF_SEGMENT_OFFSET, payload);
        elf
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn pvh_boot_writes_start_info_memmap_and_initrd() {
        let ram = 256 * MIB;
        let mem = guest_mem(ram);
        let payload = pattern(0x800, 7);
        let kernel = TempFile::with_contents(&fake_vmlinux(&payload, true));
        let initrd_data = pattern(0x2345, 3);
        let initrd = TempFile::with_contents(&initrd_data);

        let state = boot(&mem, &kernel, Some(&initrd), "console=ttyS0 root=/dev/ram0", ram).unwrap();

        assert_eq!(state.mode, CpuMode::Protected32Flat);
        assert_eq!(state.rip, u64::from(PVH_ENTRY));
        assert_eq!(state.rbx, layout::PVH_START_INFO);
        assert_eq!(state.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE, "protected, no paging");
        assert_eq!((state.cr4, state.efer), (0, 0));
        assert_eq!(read(&mem, ELF_LOAD_ADDR, payload.len()), payload);

        let info = read(&mem, layout::PVH_START_INFO, 56);
        assert_eq!(u32_at(&info, 0), 0x336e_c578, "magic");
        assert_eq!(u32_at(&info, 4), 1, "version");
        assert_eq!(u32_at(&info, 12), 1, "nr_modules");
        assert_eq!(u64_at(&info, 32), RSDP, "rsdp_paddr");
        let cmdline_paddr = u64_at(&info, 24);
        let cmdline = read(&mem, cmdline_paddr, 29);
        assert_eq!(&cmdline, b"console=ttyS0 root=/dev/ram0\0");

        let e820 = layout::e820_map(ram);
        let memmap_paddr = u64_at(&info, 40);
        let entries = u32_at(&info, 48) as usize;
        assert_eq!(entries, e820.len());
        let memmap = read(&mem, memmap_paddr, entries * 24);
        for (raw, e) in memmap.chunks(24).zip(&e820) {
            assert_eq!((u64_at(raw, 0), u64_at(raw, 8), u32_at(raw, 16)), (e.addr, e.size, e.kind as u32));
        }

        let modlist = read(&mem, u64_at(&info, 16), 32);
        let (paddr, size) = (u64_at(&modlist, 0), u64_at(&modlist, 8));
        assert_eq!(size, initrd_data.len() as u64);
        assert_eq!(paddr % 0x1000, 0, "initrd page aligned");
        assert!(paddr >= ELF_LOAD_ADDR + 0x1800, "initrd above the kernel");
        assert!(paddr + size <= ram, "initrd inside RAM");
        assert_eq!(read(&mem, paddr, initrd_data.len()), initrd_data);
    }

    #[test]
    fn pvh_without_initrd_has_no_modules() {
        let ram = 64 * MIB;
        let mem = guest_mem(ram);
        let kernel = TempFile::with_contents(&fake_vmlinux(&[0x90; 16], true));
        boot(&mem, &kernel, None, "", ram).unwrap();
        let info = read(&mem, layout::PVH_START_INFO, 56);
        assert_eq!(u32_at(&info, 12), 0);
        assert_eq!(u64_at(&info, 16), 0);
        assert_eq!(read(&mem, u64_at(&info, 24), 1), [0]);
    }

    #[test]
    fn elf_without_pvh_note_is_refused_with_advice() {
        let mem = guest_mem(64 * MIB);
        let kernel = TempFile::with_contents(&fake_vmlinux(&[0x90; 16], false));
        let err = boot(&mem, &kernel, None, "", 64 * MIB).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ElfNotBootable { .. }), "{msg}");
        assert!(msg.contains("CONFIG_PVH"), "{msg}");
        assert!(msg.contains(&kernel.path.display().to_string()), "{msg}");
    }

    #[test]
    fn garbage_is_neither_elf_nor_bzimage() {
        let mem = guest_mem(64 * MIB);
        let kernel = TempFile::with_contents(&[0x55; 4096]);
        let err = boot(&mem, &kernel, None, "", 64 * MIB).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "kernel image {} is neither a bzImage, a multiboot image nor an ELF file with a PVH entry point",
                kernel.path.display()
            )
        );
    }

    const PVH32_LOAD: u32 = 0x20_0000;
    const PVH32_ENTRY: u32 = 0x20_0010;

    fn pvh32_kernel(payload: &[u8], memsz: u32) -> Vec<u8> {
        let seg = Seg { paddr: PVH32_LOAD, vaddr: 0xc020_0000, data: payload.to_vec(), memsz, flags: 5 };
        elf32_image(elf32::EM_386, 0xc020_0000, &[seg], Some(&pvh_note(PVH32_ENTRY)))
    }

    #[test]
    fn elf32_pvh_kernel_enters_at_its_note_with_the_start_info() {
        let ram = 64 * MIB;
        let mem = guest_mem(ram);
        // Dirty the bss first: the loader must clear it.
        mem.write_slice(&[0xee; 0x3000], GuestAddress(u64::from(PVH32_LOAD))).unwrap();
        let payload = pattern(0x1234, 5);
        let kernel = TempFile::with_contents(&pvh32_kernel(&payload, 0x3000));
        let initrd_data = pattern(0x1800, 9);
        let initrd = TempFile::with_contents(&initrd_data);

        let state = boot(&mem, &kernel, Some(&initrd), "console=ttyS0", ram).unwrap();

        assert_eq!(state.mode, CpuMode::Protected32Flat);
        assert_eq!(state.rip, u64::from(PVH32_ENTRY), "the note's entry, not e_entry");
        assert_eq!((state.rbx, state.rax), (layout::PVH_START_INFO, 0));
        assert_eq!(read(&mem, u64::from(PVH32_LOAD), payload.len()), payload);
        assert!(read(&mem, u64::from(PVH32_LOAD) + 0x1234, 0x3000 - 0x1234).iter().all(|&b| b == 0), "bss cleared");

        let info = read(&mem, layout::PVH_START_INFO, 56);
        assert_eq!(u32_at(&info, 0), 0x336e_c578, "magic");
        assert_eq!(u32_at(&info, 12), 1, "nr_modules");
        assert_eq!(read(&mem, u64_at(&info, 24), 14), b"console=ttyS0\0");
        assert_eq!(u32_at(&info, 48) as usize, layout::e820_map(ram).len());
        let modlist = read(&mem, u64_at(&info, 16), 32);
        let (paddr, size) = (u64_at(&modlist, 0), u64_at(&modlist, 8));
        assert_eq!(size, initrd_data.len() as u64);
        assert!(paddr >= u64::from(PVH32_LOAD) + 0x3000, "initrd above the kernel's bss: {paddr:#x}");
        assert_eq!(read(&mem, paddr, initrd_data.len()), initrd_data);
        let gdt = read(&mem, state.gdt_base, usize::from(state.gdt_limit) + 1);
        assert_eq!(u64_at(&gdt, usize::from(BOOT_CS)), state.segments().0.descriptor());
    }

    #[test]
    fn elf32_without_pvh_note_or_multiboot_header_is_refused() {
        let mem = guest_mem(64 * MIB);
        let seg = Seg { paddr: PVH32_LOAD, vaddr: PVH32_LOAD, data: vec![0x90; 16], memsz: 16, flags: 5 };
        let kernel = TempFile::with_contents(&elf32_image(elf32::EM_386, PVH32_LOAD, &[seg], None));
        let err = boot(&mem, &kernel, None, "", 64 * MIB).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ElfNotBootable { .. }), "{msg}");
        assert!(msg.contains("PVH") && msg.contains("multiboot"), "{msg}");
    }

    /// Hostile or broken ELF32 images: each is refused with a reason, nothing panics, and
    /// nothing is written to guest memory when a later segment is out of bounds.
    #[test]
    fn broken_elf32_images_are_refused_with_reasons() {
        let ram = 64 * MIB;
        let good = pvh32_kernel(&[0x90; 64], 64);
        let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
        let mut img = good.clone();
        img[28..32].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        cases.push(("phoff past the end", img, "beyond the end"));
        let mut img = good.clone();
        img[44..46].copy_from_slice(&0xffffu16.to_le_bytes());
        cases.push(("huge phnum", img, "program headers"));
        let mut img = good.clone();
        img[42..44].copy_from_slice(&56u16.to_le_bytes());
        cases.push(("phentsize of ELF64", img, "bytes each"));
        let mut img = good.clone();
        img[52 + 16..52 + 20].copy_from_slice(&0x1000u32.to_le_bytes()); // filesz > memsz
        cases.push(("filesz > memsz", img, "more file bytes"));
        let mut img = good.clone();
        img[52 + 4..52 + 8].copy_from_slice(&0xffff_ff00u32.to_le_bytes()); // p_offset
        cases.push(("segment beyond the file", img, "truncated"));
        let mut img = good.clone();
        img[52 + 12..52 + 16].copy_from_slice(&0xffff_ffc0u32.to_le_bytes()); // paddr
        img[52 + 20..52 + 24].copy_from_slice(&0x1000u32.to_le_bytes()); // memsz
        cases.push(("segment wrapping 4 GiB", img, "4 GiB"));
        let mut img = good.clone();
        img[52 + 12..52 + 16].copy_from_slice(&0x7c00u32.to_le_bytes());
        cases.push(("segment in the first MiB", img, "first MiB"));
        let mut img = good.clone();
        img[52 + 12..52 + 16].copy_from_slice(&0x0800_0000u32.to_le_bytes());
        cases.push(("segment beyond RAM", img, "more memory"));
        cases.push(("truncated header", good[..40].to_vec(), "shorter than"));
        let mut img = good.clone();
        img[18..20].copy_from_slice(&elf32::EM_X86_64.to_le_bytes());
        cases.push(("wrong machine", img, "EM_386"));
        let mut img = good.clone();
        img[0x400..0x404].copy_from_slice(&0xffff_fff0u32.to_le_bytes()); // note namesz
        cases.push(("note name overflowing", img, "PVH"));

        for (what, img, needle) in cases {
            let mem = guest_mem(ram);
            let kernel = TempFile::with_contents(&img);
            let err = boot(&mem, &kernel, None, "", ram).expect_err(what);
            let msg = err.to_string();
            assert!(msg.contains(needle), "{what}: {msg}");
            assert!(msg.contains(&kernel.path.display().to_string()), "{what}: {msg}");
        }

        // Two segments, the second outside RAM: the first is not written either.
        let segs = [
            Seg { paddr: PVH32_LOAD, vaddr: PVH32_LOAD, data: vec![0xaa; 32], memsz: 32, flags: 5 },
            Seg { paddr: 0x0400_0000, vaddr: 0x0400_0000, data: vec![0xbb; 32], memsz: 32, flags: 6 },
        ];
        let mem = guest_mem(ram);
        let kernel = TempFile::with_contents(&elf32_image(elf32::EM_386, 0, &segs, Some(&pvh_note(PVH32_ENTRY))));
        let err = boot(&mem, &kernel, None, "", ram).unwrap_err();
        assert!(matches!(err, Error::KernelImage { .. }), "{err}");
        assert_eq!(read(&mem, u64::from(PVH32_LOAD), 32), vec![0; 32]);
    }

    const SETUP_SECTS: u8 = 3;
    const INIT_SIZE: u32 = 0x40_0000;

    /// A bzImage whose setup header says what a modern x86_64 kernel says, followed by
    /// `payload` as the protected-mode kernel.
    fn fake_bzimage(version: u16, xloadflags: u16, payload: &[u8]) -> Vec<u8> {
        let setup_len = (usize::from(SETUP_SECTS) + 1) * 512;
        let mut img = vec![0u8; setup_len + payload.len()];
        img[0x1f1] = SETUP_SECTS;
        put(&mut img, 0x1fe, &0xaa55u16.to_le_bytes());
        put(&mut img, 0x202, b"HdrS");
        put(&mut img, 0x206, &version.to_le_bytes());
        img[0x211] = 0x01; // LOADED_HIGH
        put(&mut img, 0x214, &0x10_0000u32.to_le_bytes()); // code32_start
        put(&mut img, 0x22c, &0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
        put(&mut img, 0x230, &0x20_0000u32.to_le_bytes()); // kernel_alignment
        img[0x234] = 1; // relocatable_kernel
        put(&mut img, 0x236, &xloadflags.to_le_bytes());
        put(&mut img, 0x238, &2047u32.to_le_bytes()); // cmdline_size
        put(&mut img, 0x260, &INIT_SIZE.to_le_bytes());
        put(&mut img, setup_len, payload);
        img
    }

    /// Walks the 4-level page tables in guest memory for `vaddr` (2 MiB pages only).
    fn translate(mem: &GuestMem, cr3: u64, vaddr: u64) -> u64 {
        let entry = |table: u64, idx: u64| {
            let e = u64_at(&read(mem, table + idx * 8, 8), 0);
            assert_eq!(e & 1, 1, "not present at level for {vaddr:#x}");
            e
        };
        let pml4e = entry(cr3, (vaddr >> 39) & 0x1ff);
        let pdpte = entry(pml4e & !0xfff, (vaddr >> 30) & 0x1ff);
        assert_eq!(pdpte & (1 << 7), 0);
        let pde = entry(pdpte & !0xfff, (vaddr >> 21) & 0x1ff);
        assert_ne!(pde & (1 << 7), 0, "2 MiB page");
        (pde & !0x1f_ffff & ((1 << 52) - 1)) | (vaddr & 0x1f_ffff)
    }

    #[test]
    fn bzimage_boot_fills_the_zero_page_and_enters_long_mode() {
        let ram = 256 * MIB;
        let mem = guest_mem(ram);
        let payload = pattern(0x3000, 9);
        let kernel = TempFile::with_contents(&fake_bzimage(0x020f, XLF_KERNEL_64, &payload));
        let initrd_data = pattern(0x1_0001, 1);
        let initrd = TempFile::with_contents(&initrd_data);

        let state = boot(&mem, &kernel, Some(&initrd), "quiet", ram).unwrap();

        assert_eq!(state.mode, CpuMode::Long64);
        assert_eq!(state.rip, 0x10_0200);
        assert_eq!(state.rsi, layout::ZERO_PAGE_START);
        assert_eq!(state.cr0 & (X86_CR0_PE | X86_CR0_PG), X86_CR0_PE | X86_CR0_PG);
        assert_ne!(state.cr4 & X86_CR4_PAE, 0);
        assert_eq!(state.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!(read(&mem, 0x10_0000, payload.len()), payload);

        let zp = read(&mem, layout::ZERO_PAGE_START, 4096);
        assert_eq!(&zp[0x202..0x206], b"HdrS");
        assert_eq!(zp[0x210], 0xff, "type_of_loader");
        assert_eq!(u64_at(&zp, 0x70), RSDP, "acpi_rsdp_addr");
        let cmd_line_ptr = u64::from(u32_at(&zp, 0x228));
        assert_eq!(read(&mem, cmd_line_ptr, 6), b"quiet\0");

        let e820 = layout::e820_map(ram);
        assert_eq!(zp[0x1e8] as usize, e820.len());
        for (i, e) in e820.iter().enumerate() {
            let off = 0x2d0 + i * 20;
            assert_eq!(
                (u64_at(&zp, off), u64_at(&zp, off + 8), u32_at(&zp, off + 16)),
                (e.addr, e.size, e.kind as u32)
            );
        }
        assert_eq!(e820.iter().filter(|e| e.kind == E820Kind::Ram).count(), 2);

        let ramdisk_image = u64::from(u32_at(&zp, 0x218));
        let ramdisk_size = u64::from(u32_at(&zp, 0x21c));
        assert_eq!(ramdisk_size, initrd_data.len() as u64);
        assert_eq!(ramdisk_image % 0x1000, 0);
        assert!(ramdisk_image >= 0x10_0000 + u64::from(INIT_SIZE), "clear of decompression");
        assert!(ramdisk_image + ramdisk_size <= ram);
        assert_eq!(read(&mem, ramdisk_image, initrd_data.len()), initrd_data);

        // Page tables identity-map the whole low 4 GiB, including the zero page and kernel.
        for vaddr in [0u64, layout::ZERO_PAGE_START, 0x10_0200, 0x1234_5678, 0xfee0_0000, 0xffff_ffff] {
            assert_eq!(translate(&mem, state.cr3, vaddr), vaddr);
        }

        // The GDT in memory is the one the state describes.
        let gdt = read(&mem, state.gdt_base, usize::from(state.gdt_limit) + 1);
        let in_mem: Vec<u64> = gdt.chunks(8).map(|c| u64_at(c, 0)).collect();
        assert_eq!(in_mem, state.gdt_entries);
    }

    #[test]
    fn bzimage_initrd_respects_initrd_addr_max() {
        let ram = 1 << 30;
        let mem = guest_mem(ram);
        let mut img = fake_bzimage(0x020f, XLF_KERNEL_64, &[0xf4; 0x200]);
        put(&mut img, 0x22c, &0x0fff_ffffu32.to_le_bytes()); // initrd below 256 MiB
        let kernel = TempFile::with_contents(&img);
        let initrd = TempFile::with_contents(&[0xab; 0x5000]);
        boot(&mem, &kernel, Some(&initrd), "", ram).unwrap();
        let zp = read(&mem, layout::ZERO_PAGE_START, 4096);
        let start = u64::from(u32_at(&zp, 0x218));
        assert!(start + 0x5000 <= 0x1000_0000, "{start:#x}");
        assert!(start >= 0x1000_0000 - 0x6000, "placed as high as allowed: {start:#x}");
    }

    #[test]
    fn bzimage_without_64bit_entry_is_refused() {
        let mem = guest_mem(64 * MIB);
        let kernel = TempFile::with_contents(&fake_bzimage(0x020a, 0, &[0; 0x200]));
        let err = boot(&mem, &kernel, None, "", 64 * MIB).unwrap_err();
        assert!(matches!(err, Error::BzImageTooOld { version: 0x020a, .. }), "{err}");
        assert!(err.to_string().contains("2.10"), "{err}");
    }

    #[test]
    fn cmdline_longer_than_the_kernel_accepts_is_refused() {
        let mem = guest_mem(64 * MIB);
        let kernel = TempFile::with_contents(&fake_bzimage(0x020f, XLF_KERNEL_64, &[0; 0x200]));
        let long = "x".repeat(2048);
        let err = boot(&mem, &kernel, None, &long, 64 * MIB).unwrap_err();
        assert!(matches!(err, Error::CmdlineTooLong { len: 2048, max: 2047 }), "{err}");
        let ok = "x".repeat(2047);
        boot(&mem, &kernel, None, &ok, 64 * MIB).unwrap();
    }

    #[test]
    fn initrd_that_cannot_fit_is_refused() {
        let ram = 8 * MIB;
        let mem = guest_mem(ram);
        let kernel = TempFile::with_contents(&fake_vmlinux(&[0x90; 16], true));
        // The fake vmlinux loads at 16 MiB, beyond 8 MiB of RAM.
        let err = boot(&mem, &kernel, None, "", ram).unwrap_err();
        assert!(matches!(err, Error::KernelLoad { .. }), "{err}");

        let ram = 24 * MIB;
        let mem = guest_mem(ram);
        let initrd = TempFile::with_contents(&vec![1u8; 9 << 20]);
        let err = boot(&mem, &kernel, Some(&initrd), "", ram).unwrap_err();
        assert!(matches!(err, Error::InitrdTooLarge { .. }), "{err}");
        assert!(err.to_string().contains("more memory"), "{err}");
    }

    #[test]
    fn bzimage_larger_than_low_ram_is_refused_before_loading() {
        let ram = 2 * MIB;
        let mem = guest_mem(ram);
        let big = vec![0u8; (3 * MIB / 2) as usize];
        let kernel = TempFile::with_contents(&fake_bzimage(0x020f, XLF_KERNEL_64, &big));
        let err = boot(&mem, &kernel, None, "", ram).unwrap_err();
        assert!(matches!(err, Error::RamTooSmall { ram_size, .. } if ram_size == ram), "{err}");
        let err = boot(&mem, &kernel, None, "", MIB).unwrap_err();
        assert!(matches!(err, Error::RamTooSmall { .. }), "{err}");
    }

    #[test]
    fn segments_encode_the_standard_flat_descriptors() {
        let long = CpuBootState::new(CpuMode::Long64, 0, 0, 0);
        let (code, data) = long.segments();
        // Values from the Intel SDM descriptor format: 64-bit code, flat data, busy TSS.
        assert_eq!(code.descriptor(), 0x00af_9b00_0000_ffff);
        assert_eq!(data.descriptor(), 0x00cf_9300_0000_ffff);
        assert_eq!(long.tss().descriptor(), 0x0000_8b00_0000_0067);
        assert!(code.l && !code.db);

        let pvh = CpuBootState::new(CpuMode::Protected32Flat, 0, 0, 0);
        let (code32, data32) = pvh.segments();
        assert_eq!(code32.descriptor(), 0x00cf_9b00_0000_ffff);
        assert!(code32.db && !code32.l);
        assert_eq!(data32, data);

        for state in [&long, &pvh] {
            let (c, d) = state.segments();
            for seg in [c, d, state.tss()] {
                assert_eq!(state.gdt_entries[usize::from(seg.selector) / 8], seg.descriptor());
                assert!(usize::from(seg.selector) + 7 <= usize::from(state.gdt_limit));
            }
            assert_eq!(state.gdt_entries[0], 0);
            assert_eq!((c.selector, d.selector), (0x10, 0x18));
        }
    }
}

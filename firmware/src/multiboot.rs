//! Multiboot v1 (The Multiboot Specification, version 0.6.96): kernels such as Xen, many hobby
//! and teaching kernels, and test payloads. QEMU boots them with `-kernel`; so do we, with the
//! same information in the same fields (QEMU's `hw/i386/multiboot.c` and its `multiboot.bin`
//! option ROM were read for what a guest sees there).
//!
//! - The header (spec 3.1) is a 4-byte aligned `magic, flags, checksum` triple in the first
//!   8192 bytes. With flag 16 the a.out kludge address fields say where the file is loaded
//!   (3.1.3); without it the image must be a 32-bit ELF file, loaded by its program headers.
//! - The machine state (3.2): EAX = 0x2BADB002, EBX = physical address of the multiboot
//!   information structure, flat 32-bit code and data segments, CR0.PE set and PG clear,
//!   EFLAGS.IF and VM clear. [`CpuMode::Protected32Flat`] is that state.
//! - The information structure (3.3) gets what QEMU fills in: mem_lower/mem_upper, the boot
//!   device QEMU reports, the command line (the kernel's file name, a space, then `-append`, as
//!   QEMU writes it), the modules, the memory map (our e820 map) and the boot loader name.
//! - Modules come from `-initrd`, QEMU's syntax: `-initrd "file1 args,file2"` loads two modules;
//!   each module's command line is its whole entry (file name included, as QEMU passes it), the
//!   file is the entry up to its first space, and `,,` is a comma inside an entry.

use std::fs::File;
use std::os::unix::ffi::OsStrExt;

use crate::elf32::{self, Elf32};
use crate::layout::{self, E820Kind};
use crate::linux::{write_gdt, CpuBootState, CpuMode, KernelBoot};
use crate::{write_guest, Error, GuestMem};

/// The header must lie entirely within the image's first 8192 bytes (spec 3.1.1).
pub const HEADER_SEARCH_LEN: usize = 8192;
pub const HEADER_MAGIC: u32 = 0x1bad_b002;
/// What EAX holds at the kernel's entry (spec 3.2).
pub const BOOTLOADER_MAGIC: u32 = 0x2bad_b002;
/// Header flag 16: the address fields at offsets 12..32 are valid (spec 3.1.2).
const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Header flags 0 (page-align modules) and 1 (memory information) are always honoured.
const FLAGS_HONOURED: u32 = 0b11;
/// The requirement bits (0-15) a loader must understand.
const FLAGS_REQUIREMENTS: u32 = 0xffff;
const PAGE_SIZE: u64 = 0x1000;

/// `flags` bits of the information structure (spec 3.3).
const INFO_MEMORY: u32 = 1 << 0;
const INFO_BOOT_DEVICE: u32 = 1 << 1;
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MODS: u32 = 1 << 3;
const INFO_MMAP: u32 = 1 << 6;
const INFO_BOOT_LOADER_NAME: u32 = 1 << 9;
/// The information structure up to and including the VBE fields.
const INFO_SIZE: usize = 88;
/// One module list entry: mod_start, mod_end, string, reserved.
const MODULE_ENTRY_SIZE: u64 = 16;
/// One memory map entry: size (u32, not counting itself), base_addr, length, type.
const MMAP_ENTRY_SIZE: u64 = 24;
/// "First BIOS hard disk, no partitions": what QEMU reports, since nothing was loaded from a disk.
const BOOT_DEVICE: u32 = 0x8000_ffff;
pub const BOOT_LOADER_NAME: &str = "devicemodel";

/// The a.out kludge address fields (spec 3.1.3), present when flag 16 is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressFields {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// A multiboot header found in an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// File offset of the magic.
    pub offset: usize,
    pub flags: u32,
    pub addresses: Option<AddressFields>,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// Looks for a header in `head` (the image's first bytes, at most [`HEADER_SEARCH_LEN`]).
/// `None`: not a multiboot image. `Some(Err)`: a header whose fields cannot be read.
pub fn find_header(head: &[u8]) -> Option<Result<Header, String>> {
    let head = &head[..head.len().min(HEADER_SEARCH_LEN)];
    let mut offset = 0;
    while offset + 12 <= head.len() {
        let magic = u32_at(head, offset);
        let flags = u32_at(head, offset + 4);
        let checksum = u32_at(head, offset + 8);
        // The checksum makes magic + flags + checksum zero (spec 3.1.2).
        if magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(checksum) == 0 {
            if flags & FLAG_AOUT_KLUDGE == 0 {
                return Some(Ok(Header { offset, flags, addresses: None }));
            }
            if offset + 32 > head.len() {
                return Some(Err(format!(
                    "its multiboot header at file offset {offset:#x} sets flag 16 (load addresses) but its \
                     address fields lie beyond the end of the file or of the first 8 KiB"
                )));
            }
            let at = |i: usize| u32_at(head, offset + 12 + 4 * i);
            let addresses = AddressFields {
                header_addr: at(0),
                load_addr: at(1),
                load_end_addr: at(2),
                bss_end_addr: at(3),
                entry_addr: at(4),
            };
            return Some(Ok(Header { offset, flags, addresses: Some(addresses) }));
        }
        offset += 4;
    }
    None
}

/// Where the kernel ended (exclusive guest address) and its entry point.
struct LoadedKernel {
    end: u64,
    entry: u64,
}

/// Loads the image as its a.out kludge fields say (spec 3.1.3).
fn load_with_addresses(
    mem: &GuestMem,
    kernel: &mut File,
    kernel_len: u64,
    offset: usize,
    a: &AddressFields,
    ram_size: u64,
) -> Result<LoadedKernel, String> {
    let load_addr = u64::from(a.load_addr);
    let header_addr = u64::from(a.header_addr);
    if header_addr < load_addr {
        return Err(format!(
            "its multiboot header_addr {header_addr:#x} is below its load_addr {load_addr:#x}; the header must \
             lie inside what is loaded"
        ));
    }
    // The file offset the loaded text starts at: the header's own offset minus its distance
    // from the start of the load.
    let text_offset = (offset as u64).checked_sub(header_addr - load_addr).ok_or_else(|| {
        format!(
            "its multiboot header says loading starts {:#x} bytes before the header, but the header is at file \
             offset {offset:#x}",
            header_addr - load_addr
        )
    })?;
    let load_size = match u64::from(a.load_end_addr) {
        // 0: the text and data segments occupy the rest of the file.
        0 => kernel_len - text_offset,
        end if end < load_addr => {
            return Err(format!("its multiboot load_end_addr {end:#x} is below its load_addr {load_addr:#x}"))
        }
        end => end - load_addr,
    };
    if text_offset + load_size > kernel_len {
        return Err(format!(
            "its multiboot header loads {load_size:#x} bytes from file offset {text_offset:#x}, but the file is \
             only {kernel_len} bytes (is it truncated?)"
        ));
    }
    let mem_size = match u64::from(a.bss_end_addr) {
        // 0: no bss segment.
        0 => load_size,
        end if end < load_addr + load_size => {
            return Err(format!(
                "its multiboot bss_end_addr {end:#x} is below the end of the loaded data {:#x}",
                load_addr + load_size
            ))
        }
        end => end - load_addr,
    };
    if mem_size == 0 {
        return Err("its multiboot header loads nothing (load_end_addr equals load_addr)".into());
    }
    let end = load_addr + mem_size;
    elf32::check_placement("the image", load_addr, end, ram_size)?;
    elf32::copy_to_guest(mem, kernel, text_offset, load_addr, load_size, mem_size - load_size)?;
    Ok(LoadedKernel { end, entry: u64::from(a.entry_addr) })
}

/// Loads a multiboot ELF image by its program headers (QEMU's rule: 32-bit only).
fn load_elf(
    mem: &GuestMem,
    kernel: &mut File,
    kernel_len: u64,
    head: &[u8],
    ram_size: u64,
) -> Result<LoadedKernel, String> {
    if !head.starts_with(b"\x7fELF") {
        return Err("its multiboot header gives no load addresses (flag 16 is clear) and it is not an ELF file, so \
                    nothing says where it loads"
            .into());
    }
    if !elf32::is_elf32(head) {
        return Err("it is a 64-bit ELF file with a multiboot header; multiboot v1 boots 32-bit images only (QEMU \
                    refuses it too): link or convert it as elf32-i386 (objcopy -O elf32-i386), or give it a PVH \
                    note"
            .into());
    }
    let elf: Elf32 = elf32::parse(kernel, kernel_len)?;
    if elf.machine != elf32::EM_386 {
        return Err(format!("it is a 32-bit ELF file for machine {} instead of x86 (EM_386)", elf.machine));
    }
    let (_, end) = elf.load(mem, kernel, ram_size)?;
    Ok(LoadedKernel { end, entry: elf.physical_entry() })
}

/// One `-initrd` entry: the whole text (the module's command line) and the file name in it.
#[derive(Debug, PartialEq, Eq)]
struct ModuleSpec {
    cmdline: Vec<u8>,
    file: Vec<u8>,
}

/// Splits `-initrd` the way QEMU does for multiboot: entries separated by `,`, `,,` standing
/// for a comma; the file name ends at the first space.
fn parse_modules(list: &[u8]) -> Result<Vec<ModuleSpec>, &'static str> {
    let mut entries = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    while i < list.len() {
        match list[i] {
            b',' if list.get(i + 1) == Some(&b',') => {
                cur.push(b',');
                i += 1;
            }
            b',' => entries.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
        i += 1;
    }
    entries.push(cur);
    entries
        .into_iter()
        .map(|cmdline| {
            let file = cmdline.split(|&c| c == b' ').next().unwrap_or_default().to_vec();
            if file.is_empty() {
                return Err("an entry has no file name (separate multiboot modules with ',', write ',,' for a comma \
                            in a file name, and start each entry with its file name)");
            }
            Ok(ModuleSpec { cmdline, file })
        })
        .collect()
}

/// mem_lower: KiB of RAM from address 0 (at most 640); mem_upper: KiB of RAM from 1 MiB up to
/// the first hole, found the way QEMU's option ROM does, by extending through contiguous e820
/// RAM entries below 4 GiB.
fn mem_lower_upper(e820: &[layout::E820Entry]) -> (u32, u32) {
    let lower =
        e820.iter().find(|e| e.addr == 0 && e.kind == E820Kind::Ram).map(|e| e.size.min(640 << 10) >> 10).unwrap_or(0);
    let mut top = layout::HIGH_MEMORY_START;
    while let Some(e) =
        e820.iter().find(|e| e.kind == E820Kind::Ram && e.addr <= top && top < e.addr + e.size && e.addr < 1 << 32)
    {
        top = (e.addr + e.size).min(1 << 32);
    }
    (lower as u32, ((top - layout::HIGH_MEMORY_START) >> 10) as u32)
}

/// Loads a multiboot image found by [`find_header`] and its modules, and writes the information
/// structure. `head` is the image's first bytes.
pub(crate) fn load(
    mem: &GuestMem,
    kernel: &mut File,
    kernel_len: u64,
    head: &[u8],
    header: &Header,
    boot: &KernelBoot,
    ram_size: u64,
) -> Result<CpuBootState, Error> {
    let path = boot.kernel.display().to_string();
    let image_err = |reason| Error::KernelImage { path: path.clone(), reason };
    let unmet = header.flags & FLAGS_REQUIREMENTS & !FLAGS_HONOURED;
    if unmet != 0 {
        // QEMU boots such kernels (it only says it has no VBE); refusing them would break images
        // that work there, so warn instead of failing as spec 3.1.2 would have it.
        log::warn!(
            "kernel image {path}: its multiboot header requests features this loader does not provide (flags \
             {unmet:#x}, e.g. bit 2: a video mode); booting it anyway, as QEMU does"
        );
    }
    let loaded = match &header.addresses {
        Some(a) => load_with_addresses(mem, kernel, kernel_len, header.offset, a, ram_size),
        None => load_elf(mem, kernel, kernel_len, head, ram_size),
    }
    .map_err(image_err)?;

    // The command line QEMU passes: the kernel's file name as given, a space, then -append.
    if boot.cmdline.as_bytes().contains(&0) {
        return Err(Error::CmdlineHasNul);
    }
    let mut strings = Vec::new();
    strings.extend_from_slice(boot.kernel.as_os_str().as_bytes());
    strings.push(b' ');
    strings.extend_from_slice(boot.cmdline.as_bytes());
    strings.push(0);

    // Modules: page aligned (header flag 0 asks for it; we always do it), one after another
    // above the kernel.
    let ram_end = layout::low_ram_end(ram_size);
    let list = boot.initrd.map(|p| p.as_os_str().as_bytes()).unwrap_or_default();
    let specs = match boot.initrd {
        Some(_) => parse_modules(list)
            .map_err(|reason| Error::ModuleList { list: String::from_utf8_lossy(list).into_owned(), reason })?,
        None => Vec::new(),
    };
    if specs.len() as u64 * MODULE_ENTRY_SIZE > layout::MULTIBOOT_MODS_MAX_SIZE {
        return Err(Error::ModuleList {
            list: String::from_utf8_lossy(list).into_owned(),
            reason: "more than 1024 multiboot modules",
        });
    }
    let mut cursor = loaded.end.next_multiple_of(PAGE_SIZE);
    let mut module_list = Vec::with_capacity(specs.len() * MODULE_ENTRY_SIZE as usize);
    for spec in &specs {
        let name = String::from_utf8_lossy(&spec.file).into_owned();
        let read_err = |source| Error::InitrdRead { path: name.clone(), source };
        let mut file = File::open(std::ffi::OsStr::from_bytes(&spec.file)).map_err(read_err)?;
        let size = file.metadata().map_err(read_err)?.len();
        let room = ram_end.saturating_sub(cursor);
        let end = match cursor.checked_add(size) {
            Some(end) if end <= ram_end => end,
            _ => return Err(Error::ModuleDoesNotFit { path: name, size, room }),
        };
        elf32::copy_to_guest(mem, &mut file, 0, cursor, size, 0)
            .map_err(|reason| Error::KernelImage { path: format!("{path} (module {name})"), reason })?;
        let string_addr = layout::CMDLINE_START + strings.len() as u64;
        strings.extend_from_slice(&spec.cmdline);
        strings.push(0);
        // Below low_ram_end, so below 4 GiB: the casts keep every bit.
        for v in [cursor as u32, end as u32, string_addr as u32, 0] {
            module_list.extend_from_slice(&v.to_le_bytes());
        }
        cursor = end.next_multiple_of(PAGE_SIZE);
    }
    let loader_name_addr = layout::CMDLINE_START + strings.len() as u64;
    strings.extend_from_slice(BOOT_LOADER_NAME.as_bytes());
    strings.push(0);
    if strings.len() > layout::CMDLINE_MAX_SIZE {
        return Err(Error::CmdlineTooLong { len: strings.len(), max: layout::CMDLINE_MAX_SIZE - 1 });
    }
    write_guest(mem, "multiboot command lines", layout::CMDLINE_START, &strings)?;
    if !module_list.is_empty() {
        write_guest(mem, "multiboot module list", layout::MULTIBOOT_MODS_START, &module_list)?;
    }

    let e820 = layout::e820_map(ram_size);
    let mut mmap = Vec::with_capacity(e820.len() * MMAP_ENTRY_SIZE as usize);
    for e in &e820 {
        mmap.extend_from_slice(&((MMAP_ENTRY_SIZE - 4) as u32).to_le_bytes());
        mmap.extend_from_slice(&e.addr.to_le_bytes());
        mmap.extend_from_slice(&e.size.to_le_bytes());
        mmap.extend_from_slice(&(e.kind as u32).to_le_bytes());
    }
    debug_assert!(mmap.len() as u64 <= layout::MULTIBOOT_MMAP_MAX_SIZE);
    write_guest(mem, "multiboot memory map", layout::MULTIBOOT_MMAP_START, &mmap)?;

    let (mem_lower, mem_upper) = mem_lower_upper(&e820);
    let mut info = [0u8; INFO_SIZE];
    let mut put = |off: usize, v: u32| info[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put(0, INFO_MEMORY | INFO_BOOT_DEVICE | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_BOOT_LOADER_NAME);
    put(4, mem_lower);
    put(8, mem_upper);
    put(12, BOOT_DEVICE);
    put(16, layout::CMDLINE_START as u32);
    put(20, specs.len() as u32);
    put(24, layout::MULTIBOOT_MODS_START as u32);
    put(44, mmap.len() as u32);
    put(48, layout::MULTIBOOT_MMAP_START as u32);
    put(64, loader_name_addr as u32);
    write_guest(mem, "multiboot information", layout::MULTIBOOT_INFO_START, &info)?;

    let mut state = CpuBootState::new(CpuMode::Protected32Flat, loaded.entry, layout::MULTIBOOT_INFO_START, 0);
    state.rax = u64::from(BOOTLOADER_MAGIC);
    write_gdt(mem, &state)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::load_kernel;
    use crate::test_util::{elf32_image, guest_mem, put, pvh_note, read, u32_at, u64_at, Seg, TempFile};
    use std::path::Path;
    use vm_memory::{Bytes, GuestAddress};

    const MIB: u64 = 1 << 20;
    const LOAD: u32 = 0x10_0000;
    /// Where the header sits in the test images (after a little "code").
    const HDR: usize = 0x40;

    fn header(flags: u32) -> Vec<u8> {
        let mut h = Vec::new();
        for v in [HEADER_MAGIC, flags, 0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags)] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        h
    }

    /// An a.out-kludge image loaded whole at `LOAD`: `len` bytes of pattern with the header at
    /// `HDR`; the address fields are given.
    fn aout_image(len: usize, load_end: u32, bss_end: u32, entry: u32) -> Vec<u8> {
        let mut img: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(1)).collect();
        let mut h = header(FLAG_AOUT_KLUDGE | 0b11);
        for v in [LOAD + HDR as u32, LOAD, load_end, bss_end, entry] {
            h.extend_from_slice(&v.to_le_bytes());
        }
        put(&mut img, HDR, &h);
        img
    }

    fn boot(
        mem: &GuestMem,
        kernel: &Path,
        initrd: Option<&Path>,
        cmdline: &str,
        ram: u64,
    ) -> Result<CpuBootState, Error> {
        load_kernel(mem, &KernelBoot { kernel, initrd, cmdline }, ram, 0xe0000)
    }

    fn c_string(mem: &GuestMem, addr: u64) -> String {
        let bytes = read(mem, addr, 256);
        let end = bytes.iter().position(|&b| b == 0).expect("NUL-terminated");
        String::from_utf8(bytes[..end].to_vec()).unwrap()
    }

    #[test]
    fn aout_kludge_image_gets_the_info_qemu_gives() {
        let ram = 64 * MIB;
        let mem = guest_mem(ram);
        let bss_end = LOAD + 0x3000;
        mem.write_slice(&[0xee; 0x3000], GuestAddress(u64::from(LOAD))).unwrap();
        let img = aout_image(0x1100, 0, bss_end, LOAD + 0x80);
        let kernel = TempFile::with_contents(&img);
        let mod1: Vec<u8> = (0..0x1801u32).map(|i| i as u8).collect();
        let mod2 = b"second module".to_vec();
        let (m1, m2) = (TempFile::with_contents(&mod1), TempFile::with_contents(&mod2));
        let list = format!("{} arg1 x=y,{}", m1.path.display(), m2.path.display());

        let state = boot(&mem, &kernel.path, Some(Path::new(&list)), "hello world", ram).unwrap();

        assert_eq!(state.mode, CpuMode::Protected32Flat);
        assert_eq!(state.rax, 0x2bad_b002);
        assert_eq!(state.rbx, layout::MULTIBOOT_INFO_START);
        assert_eq!(state.rip, u64::from(LOAD + 0x80));
        assert_eq!(state.cr0 & 0x8000_0001, 1, "protected mode, paging off");
        assert_eq!(read(&mem, u64::from(LOAD), img.len()), img, "the whole file at load_addr");
        assert!(read(&mem, u64::from(LOAD) + 0x1100, 0x1f00).iter().all(|&b| b == 0), "bss cleared");

        let info = read(&mem, state.rbx, INFO_SIZE);
        let flags = u32_at(&info, 0);
        for bit in [0, 1, 2, 3, 6, 9] {
            assert_ne!(flags & (1 << bit), 0, "flags bit {bit}");
        }
        assert_eq!(u32_at(&info, 4), 639, "mem_lower: RAM below the EBDA");
        assert_eq!(u32_at(&info, 8), ((ram - MIB) >> 10) as u32, "mem_upper");
        assert_eq!(u32_at(&info, 12), 0x8000_ffff, "boot_device as QEMU");
        let cmdline = c_string(&mem, u64::from(u32_at(&info, 16)));
        assert_eq!(cmdline, format!("{} hello world", kernel.path.display()), "file name first, as QEMU");
        assert_eq!(c_string(&mem, u64::from(u32_at(&info, 64))), "devicemodel");

        assert_eq!(u32_at(&info, 20), 2, "mods_count");
        let mods = read(&mem, u64::from(u32_at(&info, 24)), 32);
        let (s1, e1) = (u64::from(u32_at(&mods, 0)), u64::from(u32_at(&mods, 4)));
        let (s2, e2) = (u64::from(u32_at(&mods, 16)), u64::from(u32_at(&mods, 20)));
        assert_eq!((s1 % 0x1000, s2 % 0x1000), (0, 0), "page aligned");
        assert!(s1 >= u64::from(bss_end), "module above the kernel's bss: {s1:#x}");
        assert!(s2 >= e1 && e2 <= ram);
        assert_eq!(e1 - s1, mod1.len() as u64);
        assert_eq!(read(&mem, s1, mod1.len()), mod1);
        assert_eq!(read(&mem, s2, mod2.len()), mod2);
        assert_eq!(c_string(&mem, u64::from(u32_at(&mods, 8))), format!("{} arg1 x=y", m1.path.display()));
        assert_eq!(c_string(&mem, u64::from(u32_at(&mods, 24))), m2.path.display().to_string());

        let e820 = layout::e820_map(ram);
        let mmap_len = u32_at(&info, 44) as usize;
        assert_eq!(mmap_len, e820.len() * 24);
        let mmap = read(&mem, u64::from(u32_at(&info, 48)), mmap_len);
        for (raw, e) in mmap.chunks(24).zip(&e820) {
            assert_eq!(u32_at(raw, 0), 20, "entry size excludes the size field");
            assert_eq!((u64_at(raw, 4), u64_at(raw, 12), u32_at(raw, 20)), (e.addr, e.size, e.kind as u32));
        }
    }

    #[test]
    fn elf_multiboot_image_loads_by_program_headers_and_translates_a_high_entry() {
        let ram = 32 * MIB;
        let mem = guest_mem(ram);
        // Linked at 0xc0100000, loaded at 1 MiB: the entry moves with the executable segment.
        let code = vec![0xf4; 0x100];
        let seg = Seg { paddr: LOAD, vaddr: 0xc010_0000, data: code.clone(), memsz: 0x100, flags: 5 };
        let mut img = elf32_image(elf32::EM_386, 0xc010_0010, &[seg], None);
        put(&mut img, 0x1000, &header(0b10));
        let kernel = TempFile::with_contents(&img);

        let state = boot(&mem, &kernel.path, None, "", ram).unwrap();
        assert_eq!(state.rip, u64::from(LOAD) + 0x10);
        assert_eq!(state.rax, u64::from(BOOTLOADER_MAGIC));
        assert_eq!(read(&mem, u64::from(LOAD), code.len()), code);
        let info = read(&mem, state.rbx, INFO_SIZE);
        assert_eq!(u32_at(&info, 20), 0, "no modules");
        // QEMU writes "%s %s": the trailing space stays when -append is empty.
        assert_eq!(c_string(&mem, u64::from(u32_at(&info, 16))), format!("{} ", kernel.path.display()));
    }

    #[test]
    fn detection_follows_qemu_bzimage_then_multiboot_then_pvh() {
        let ram = 32 * MIB;
        // An ELF32 with both a PVH note and a multiboot header boots as multiboot.
        let seg = Seg { paddr: LOAD, vaddr: LOAD, data: vec![0x90; 16], memsz: 16, flags: 5 };
        let mut img = elf32_image(elf32::EM_386, LOAD, &[seg], Some(&pvh_note(LOAD + 4)));
        put(&mut img, 0x800, &header(0));
        let kernel = TempFile::with_contents(&img);
        let state = boot(&guest_mem(ram), &kernel.path, None, "", ram).unwrap();
        assert_eq!((state.rax, state.rip), (u64::from(BOOTLOADER_MAGIC), u64::from(LOAD)));

        // A bzImage that happens to contain a multiboot header is a bzImage.
        let mut bz = vec![0u8; 0x1000];
        bz[0x1f1] = 3;
        put(&mut bz, 0x1fe, &0xaa55u16.to_le_bytes());
        put(&mut bz, 0x202, b"HdrS");
        put(&mut bz, 0x206, &0x020fu16.to_le_bytes());
        bz[0x211] = 0x01; // LOADED_HIGH
        put(&mut bz, 0x214, &0x10_0000u32.to_le_bytes()); // code32_start
        put(&mut bz, 0x230, &0x20_0000u32.to_le_bytes()); // kernel_alignment
        bz[0x234] = 1; // relocatable_kernel
        put(&mut bz, 0x236, &1u16.to_le_bytes()); // XLF_KERNEL_64
        put(&mut bz, 0x238, &255u32.to_le_bytes()); // cmdline_size
        put(&mut bz, 0x260, &0x10_0000u32.to_le_bytes()); // init_size
        put(&mut bz, 0x900, &header(0));
        let kernel = TempFile::with_contents(&bz);
        let state = boot(&guest_mem(ram), &kernel.path, None, "", ram).unwrap();
        assert_eq!(state.mode, CpuMode::Long64);
    }

    #[test]
    fn header_search_is_aligned_checksummed_and_bounded_to_8_kib() {
        let at = |off: usize, h: &[u8]| {
            let mut img = vec![0u8; 0x3000];
            put(&mut img, off, h);
            find_header(&img[..HEADER_SEARCH_LEN]).map(|r| r.map(|h| h.offset))
        };
        assert_eq!(at(0x100, &header(0)), Some(Ok(0x100)));
        assert_eq!(at(HEADER_SEARCH_LEN - 12, &header(0)), Some(Ok(HEADER_SEARCH_LEN - 12)), "last slot");
        assert_eq!(at(HEADER_SEARCH_LEN, &header(0)), None, "beyond 8 KiB");
        assert_eq!(at(0x102, &header(0)), None, "not 4-byte aligned");
        let mut bad = header(0);
        bad[8] ^= 1;
        assert_eq!(at(0x100, &bad), None, "bad checksum");
        // Flag 16 with the address fields cut off by the 8 KiB limit.
        assert!(matches!(at(HEADER_SEARCH_LEN - 12, &header(FLAG_AOUT_KLUDGE)), Some(Err(_))));
    }

    /// Inconsistent or out-of-RAM a.out fields: refused with a reason naming the image, no
    /// panic, and nothing loaded.
    #[test]
    fn hostile_address_fields_are_refused() {
        let ram = 32 * MIB;
        let patch = |img: &mut Vec<u8>, field: usize, v: u32| put(img, HDR + 12 + 4 * field, &v.to_le_bytes());
        let base = aout_image(0x400, 0, 0, LOAD);
        let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
        let mut img = base.clone();
        patch(&mut img, 0, LOAD - 4); // header_addr < load_addr
        cases.push(("header below load", img, "below its load_addr"));
        let mut img = base.clone();
        patch(&mut img, 0, LOAD + 0x10_0000); // header claims to be 1 MiB into the load
        cases.push(("negative text offset", img, "bytes before the header"));
        let mut img = base.clone();
        patch(&mut img, 2, LOAD - 1);
        cases.push(("load_end below load", img, "load_end_addr"));
        let mut img = base.clone();
        patch(&mut img, 2, LOAD + 0x10_0000);
        cases.push(("load_end beyond the file", img, "truncated"));
        let mut img = base.clone();
        patch(&mut img, 2, LOAD + 0x400);
        patch(&mut img, 3, LOAD + 0x200);
        cases.push(("bss_end inside the data", img, "bss_end_addr"));
        let mut img = base.clone();
        patch(&mut img, 2, LOAD + 0x400);
        patch(&mut img, 3, 0xffff_ffff);
        cases.push(("bss to 4 GiB", img, "more memory"));
        let mut img = base.clone();
        patch(&mut img, 0, 0x7c00 + HDR as u32);
        patch(&mut img, 1, 0x7c00);
        cases.push(("load in the first MiB", img, "first MiB"));
        let mut img = base.clone();
        patch(&mut img, 0, 0xdfff_f000 + HDR as u32);
        patch(&mut img, 1, 0xdfff_f000);
        cases.push(("load past RAM", img, "more memory"));
        let mut img = base.clone();
        patch(&mut img, 2, LOAD);
        cases.push(("loads nothing", img, "loads nothing"));
        let mut img = header(0);
        img.extend_from_slice(&[0; 64]);
        cases.push(("no addresses, not ELF", img, "not an ELF file"));
        let mut tiny = header(FLAG_AOUT_KLUDGE);
        tiny.extend_from_slice(&[0; 8]);
        cases.push(("fields beyond a tiny file", tiny, "beyond the end"));
        let mut elf64 = vec![0u8; 0x100];
        put(&mut elf64, 0, b"\x7fELF\x02\x01\x01");
        put(&mut elf64, 0x80, &header(0));
        cases.push(("ELF64 multiboot", elf64, "32-bit images only"));

        for (what, img, needle) in cases {
            let mem = guest_mem(ram);
            let kernel = TempFile::with_contents(&img);
            let err = boot(&mem, &kernel.path, None, "", ram).expect_err(what);
            let msg = err.to_string();
            assert!(matches!(err, Error::KernelImage { .. }), "{what}: {msg}");
            assert!(msg.contains(needle) && msg.contains(&kernel.path.display().to_string()), "{what}: {msg}");
            assert_eq!(read(&mem, u64::from(LOAD), 16), vec![0; 16], "{what}: nothing loaded");
        }
    }

    #[test]
    fn modules_that_do_not_fit_or_cannot_be_read_are_refused() {
        let ram = 4 * MIB;
        let kernel = TempFile::with_contents(&aout_image(0x400, 0, 0, LOAD));
        let big = TempFile::with_contents(&vec![1u8; 3 << 20]);
        let err = boot(&guest_mem(ram), &kernel.path, Some(&big.path), "", ram).unwrap_err();
        assert!(matches!(err, Error::ModuleDoesNotFit { size, .. } if size == 3 << 20), "{err}");
        assert!(err.to_string().contains("-m"), "{err}");

        let err = boot(&guest_mem(ram), &kernel.path, Some(Path::new("/nonexistent/mod arg")), "", ram).unwrap_err();
        assert!(matches!(&err, Error::InitrdRead { path, .. } if path == "/nonexistent/mod"), "{err}");

        let list = format!("{},", big.path.display());
        let err = boot(&guest_mem(ram), &kernel.path, Some(Path::new(&list)), "", ram).unwrap_err();
        assert!(matches!(err, Error::ModuleList { .. }), "{err}");
        assert!(err.to_string().contains(",,"), "{err}");

        let err = boot(&guest_mem(ram), &kernel.path, None, "a\0b", ram).unwrap_err();
        assert!(matches!(err, Error::CmdlineHasNul), "{err}");
    }

    #[test]
    fn a_doubled_comma_is_a_comma_in_a_module_file_name() {
        let dir = std::env::temp_dir().join(format!("mb-comma-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let odd = dir.join("a,b");
        std::fs::write(&odd, b"comma module").unwrap();
        let ram = 16 * MIB;
        let mem = guest_mem(ram);
        let kernel = TempFile::with_contents(&aout_image(0x400, 0, 0, LOAD));
        let list = format!("{}/a,,b --x", dir.display());
        let state = boot(&mem, &kernel.path, Some(Path::new(&list)), "", ram);
        std::fs::remove_dir_all(&dir).unwrap();
        let info = read(&mem, state.unwrap().rbx, INFO_SIZE);
        assert_eq!(u32_at(&info, 20), 1);
        let mods = read(&mem, u64::from(u32_at(&info, 24)), 16);
        assert_eq!(read(&mem, u64::from(u32_at(&mods, 0)), 12), b"comma module");
        assert_eq!(c_string(&mem, u64::from(u32_at(&mods, 8))), format!("{}/a,b --x", dir.display()));
    }

    #[test]
    fn mem_upper_stops_at_the_pci_hole_with_ram_above_4_gib() {
        let (lower, upper) = mem_lower_upper(&layout::e820_map(5 << 30));
        assert_eq!(lower, 639);
        assert_eq!(u64::from(upper), (layout::PCI_HOLE_START - MIB) >> 10);
    }
}

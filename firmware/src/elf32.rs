//! 32-bit x86 ELF images (ELFCLASS32, little-endian, EM_386): what a 32-bit PVH kernel and a
//! multiboot ELF kernel are. linux-loader reads only ELF64, so these are parsed here.
//!
//! The image comes from the host's command line, but it is treated as hostile all the same:
//! every offset and size is checked against the file and the guest's RAM before anything is
//! read or written, and a bad image is refused with the reason (System V ABI, "ELF Header",
//! "Program Header" and "Note Section"; the i386 supplement for EM_386).

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use vm_memory::{Bytes, GuestAddress};

use crate::layout;
use crate::GuestMem;

const ELFCLASS32: u8 = 1;
const ELFDATA2LSB: u8 = 1;
pub const EM_386: u16 = 3;
pub const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PF_X: u32 = 1;
const EHDR_SIZE: usize = 52;
const PHDR_SIZE: usize = 32;
/// More program headers than any kernel has; bounds the walk over a hostile table.
const MAX_PHDRS: usize = 256;
/// Largest PT_NOTE segment read (Linux's notes are a few hundred bytes).
const MAX_NOTES_SIZE: u64 = 1 << 20;
/// `XEN_ELFNOTE_PHYS32_ENTRY` (xen/include/public/elfnote.h): the 32-bit physical entry point
/// of the PVH boot ABI.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// One PT_LOAD program header, widened to u64 so sums cannot overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub flags: u32,
}

/// What the loaders need from a 32-bit ELF image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elf32 {
    pub machine: u16,
    /// `e_entry` as written (a virtual address).
    pub entry: u32,
    /// PT_LOAD segments with a non-zero memory size.
    pub loads: Vec<LoadSegment>,
    /// The `XEN_ELFNOTE_PHYS32_ENTRY` note's value, if a PT_NOTE segment carries one.
    pub pvh_entry: Option<u32>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn read_at(file: &File, offset: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| format!("cannot read {len} bytes at file offset {offset:#x}: {e}"))?;
    Ok(buf)
}

/// True when `head` starts like a 32-bit ELF file.
pub fn is_elf32(head: &[u8]) -> bool {
    head.len() > 4 && head.starts_with(b"\x7fELF") && head[4] == ELFCLASS32
}

/// Reads the ELF header, the program headers and the notes. `file_len` is the file's size.
pub fn parse(file: &File, file_len: u64) -> Result<Elf32, String> {
    if file_len < EHDR_SIZE as u64 {
        return Err(format!("the file is {file_len} bytes, shorter than a 32-bit ELF header ({EHDR_SIZE} bytes)"));
    }
    let ehdr = read_at(file, 0, EHDR_SIZE)?;
    if !ehdr.starts_with(b"\x7fELF") || ehdr[4] != ELFCLASS32 {
        return Err("it is not a 32-bit ELF file".into());
    }
    if ehdr[5] != ELFDATA2LSB {
        return Err("it is a big-endian ELF file; x86 images are little-endian".into());
    }
    let machine = u16_at(&ehdr, 18);
    let entry = u32_at(&ehdr, 24);
    let phoff = u64::from(u32_at(&ehdr, 28));
    let phentsize = usize::from(u16_at(&ehdr, 42));
    let phnum = usize::from(u16_at(&ehdr, 44));
    if phnum == 0 {
        return Err("it has no program headers, so nothing says where it loads".into());
    }
    if phnum > MAX_PHDRS {
        return Err(format!("it claims {phnum} program headers; at most {MAX_PHDRS} are accepted"));
    }
    if phentsize != PHDR_SIZE {
        return Err(format!("its program headers are {phentsize} bytes each instead of {PHDR_SIZE}"));
    }
    let table_len = (phnum * PHDR_SIZE) as u64;
    if phoff.checked_add(table_len).is_none_or(|end| end > file_len) {
        return Err(format!(
            "its program header table ({table_len} bytes at offset {phoff:#x}) lies beyond the end of the \
             {file_len}-byte file"
        ));
    }
    let table = read_at(file, phoff, phnum * PHDR_SIZE)?;

    let mut loads = Vec::new();
    let mut pvh_entry = None;
    for (i, ph) in table.chunks_exact(PHDR_SIZE).enumerate() {
        let p_type = u32_at(ph, 0);
        let offset = u64::from(u32_at(ph, 4));
        let vaddr = u64::from(u32_at(ph, 8));
        let paddr = u64::from(u32_at(ph, 12));
        let filesz = u64::from(u32_at(ph, 16));
        let memsz = u64::from(u32_at(ph, 20));
        let flags = u32_at(ph, 24);
        let in_file = offset.checked_add(filesz).is_some_and(|end| end <= file_len);
        match p_type {
            PT_LOAD if memsz > 0 => {
                if filesz > memsz {
                    return Err(format!(
                        "program header {i} has more file bytes ({filesz:#x}) than memory bytes ({memsz:#x})"
                    ));
                }
                if !in_file {
                    return Err(format!(
                        "program header {i} reads {filesz:#x} bytes at file offset {offset:#x}, beyond the end \
                         of the {file_len}-byte file (is the image truncated?)"
                    ));
                }
                if paddr + memsz > 1 << 32 {
                    return Err(format!(
                        "program header {i} loads {memsz:#x} bytes at {paddr:#x}, past the 4 GiB a 32-bit \
                         image can address"
                    ));
                }
                loads.push(LoadSegment { offset, vaddr, paddr, filesz, memsz, flags });
            }
            PT_NOTE if pvh_entry.is_none() => {
                if !in_file || filesz > MAX_NOTES_SIZE {
                    return Err(format!(
                        "program header {i} (notes) of {filesz:#x} bytes at offset {offset:#x} does not fit the \
                         {file_len}-byte file"
                    ));
                }
                pvh_entry = find_pvh_note(&read_at(file, offset, filesz as usize)?);
            }
            _ => {}
        }
    }
    if loads.is_empty() {
        return Err("it has no loadable segment (PT_LOAD)".into());
    }
    Ok(Elf32 { machine, entry, loads, pvh_entry })
}

/// Walks a PT_NOTE segment for the Xen PHYS32_ENTRY note. Its descriptor is a 32-bit address
/// in a 32-bit kernel (Linux writes it with `_ASM_PTR`); an 8-byte one is accepted when it fits.
fn find_pvh_note(notes: &[u8]) -> Option<u32> {
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    let mut pos = 0usize;
    while pos.checked_add(12)? <= notes.len() {
        let namesz = u32_at(notes, pos) as usize;
        let descsz = u32_at(notes, pos + 4) as usize;
        let n_type = u32_at(notes, pos + 8);
        let name_start = pos + 12;
        let desc_start = name_start.checked_add(align4(namesz)?)?;
        let next = desc_start.checked_add(align4(descsz)?)?;
        let name = notes.get(name_start..name_start.checked_add(namesz)?)?;
        let desc = notes.get(desc_start..desc_start.checked_add(descsz)?)?;
        if n_type == XEN_ELFNOTE_PHYS32_ENTRY && name == b"Xen\0" {
            return match descsz {
                4 => Some(u32_at(desc, 0)),
                8 => u32::try_from(u64::from_le_bytes(desc.try_into().ok()?)).ok(),
                _ => None,
            };
        }
        pos = next;
    }
    None
}

/// Checks that the range `[start, end)` lies in RAM above the first MiB (which holds the boot
/// structures, the EBDA, the VGA window and the ACPI tables) and below the end of low RAM.
pub(crate) fn check_placement(what: &str, start: u64, end: u64, ram_size: u64) -> Result<(), String> {
    let ram_end = layout::low_ram_end(ram_size);
    if start < layout::HIGH_MEMORY_START {
        return Err(format!(
            "{what} at {start:#x}..{end:#x} overlaps the first MiB, where the firmware's boot structures and ACPI \
             tables live; link the kernel at 1 MiB (0x100000) or above"
        ));
    }
    if end > ram_end {
        return Err(format!(
            "{what} at {start:#x}..{end:#x} does not fit in the guest's RAM below 4 GiB, which ends at \
             {ram_end:#x}; give the guest more memory (-m)"
        ));
    }
    Ok(())
}

/// Copies `len` bytes at file offset `offset` to guest address `addr`, then zeroes `zero` more.
pub(crate) fn copy_to_guest(
    mem: &GuestMem,
    file: &mut File,
    offset: u64,
    addr: u64,
    len: u64,
    zero: u64,
) -> Result<(), String> {
    if len > 0 {
        let len_usize = usize::try_from(len).map_err(|_| format!("{len:#x} bytes is too much to load"))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| format!("cannot seek to file offset {offset:#x}: {e}"))?;
        mem.read_exact_volatile_from(GuestAddress(addr), file, len_usize)
            .map_err(|e| format!("cannot load {len:#x} bytes at guest address {addr:#x}: {e}"))?;
    }
    // Zero in bounded chunks: memsz may be large (a kernel's .bss).
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(zero) as usize];
    let mut done = 0u64;
    while done < zero {
        let n = CHUNK.min(zero - done);
        let at = addr + len + done;
        mem.write_slice(&zeros[..n as usize], GuestAddress(at))
            .map_err(|e| format!("cannot clear {n:#x} bytes at guest address {at:#x}: {e}"))?;
        done += n;
    }
    Ok(())
}

impl Elf32 {
    /// Loads every PT_LOAD segment at its physical address after checking that all of them fit
    /// (nothing is written when one does not). Returns the lowest and the highest (exclusive)
    /// guest address written.
    pub fn load(&self, mem: &GuestMem, file: &mut File, ram_size: u64) -> Result<(u64, u64), String> {
        let mut low = u64::MAX;
        let mut high = 0;
        for (i, s) in self.loads.iter().enumerate() {
            // parse() bounded paddr + memsz by 4 GiB.
            let end = s.paddr + s.memsz;
            check_placement(&format!("segment {i}"), s.paddr, end, ram_size)?;
            low = low.min(s.paddr);
            high = high.max(end);
        }
        for s in &self.loads {
            copy_to_guest(mem, file, s.offset, s.paddr, s.filesz, s.memsz - s.filesz)?;
        }
        Ok((low, high))
    }

    /// The physical entry address for `e_entry`: when an executable segment is linked at a
    /// virtual address other than its physical one and contains the entry, the entry moves with
    /// it (what QEMU's ELF loader does for multiboot images linked high).
    pub fn physical_entry(&self) -> u64 {
        let entry = u64::from(self.entry);
        for s in &self.loads {
            if s.flags & PF_X != 0 && s.vaddr != s.paddr && entry >= s.vaddr && entry < s.vaddr + s.filesz {
                return entry - s.vaddr + s.paddr;
            }
        }
        entry
    }
}

//! The guest-physical memory map of our i440FX machine, and the fixed addresses of the structures
//! written for a direct (firmware-less) boot.
//!
//! ```text
//! 0x0000_0000 ..0x0009_fc00   RAM (real-mode IVT/BDA, boot structures below)
//! 0x0009_fc00 ..0x000a_0000   reserved (EBDA)
//! 0x000a_0000 ..0x000e_0000   legacy VGA window and option ROMs (not in the e820 map)
//! 0x000e_0000 ..0x0010_0000   reserved: ACPI tables (RSDP at 0xe0000) / BIOS shadow
//! 0x0010_0000 ..low_ram_end   RAM; low_ram_end = min(ram_size, 0xe000_0000)
//! 0xe000_0000 ..0xfec0_0000   PCI MMIO window
//! 0xfec0_0000                 IO-APIC
//! 0xfee0_0000                 local APIC
//! 4 GiB - bios size ..4 GiB   BIOS ROM
//! 4 GiB ..                    the rest of RAM
//! ```

/// Start of the memory above the first MiB (where kernels are loaded).
pub const HIGH_MEMORY_START: u64 = 0x10_0000;
/// Start of the extended BIOS data area, which ends conventional RAM.
pub const EBDA_START: u64 = 0x9_fc00;
/// End of conventional memory (start of the VGA window).
pub const CONVENTIONAL_MEMORY_END: u64 = 0xa_0000;

/// Where RAM below 4 GiB ends at most: the PCI hole starts here.
pub const PCI_HOLE_START: u64 = 0xe000_0000;
/// The PCI MMIO window for BARs below 4 GiB.
pub const PCI_MMIO_START: u64 = 0xe000_0000;
/// End (exclusive) of the PCI MMIO window below 4 GiB.
pub const PCI_MMIO_END: u64 = 0xfec0_0000;
/// IO-APIC register window.
pub const IOAPIC_START: u64 = 0xfec0_0000;
pub const IOAPIC_SIZE: u64 = 0x1000;
/// Local APIC register window.
pub const LAPIC_START: u64 = 0xfee0_0000;
pub const LAPIC_SIZE: u64 = 0x1000;
/// The BIOS ROM ends here; its start depends on the image size (see [`crate::bios`]).
pub const BIOS_ROM_END: u64 = 1 << 32;
/// Largest BIOS image we map.
pub const BIOS_ROM_MAX_SIZE: u64 = 16 << 20;
/// Where RAM resumes above the PCI hole.
pub const HIGH_RAM_START: u64 = 1 << 32;

/// ACPI tables live in the legacy BIOS area so that an OS scanning 0xe0000..0xfffff finds the RSDP.
pub const ACPI_TABLES_START: u64 = 0xe_0000;
/// End (exclusive) of the region holding the ACPI tables.
pub const ACPI_TABLES_END: u64 = 0x10_0000;
/// The RSDP sits at the very start of the ACPI region.
pub const RSDP_ADDR: u64 = ACPI_TABLES_START;

// Structures written for a direct Linux boot, all in conventional RAM below the EBDA.
/// The boot GDT (up to 8 entries).
pub const BOOT_GDT_START: u64 = 0x500;
/// The multiboot information structure (88 bytes), then its memory map (`mmap_addr`, one
/// 24-byte entry per e820 entry), then its module list (16 bytes per module).
pub const MULTIBOOT_INFO_START: u64 = 0x1000;
pub const MULTIBOOT_MMAP_START: u64 = 0x1100;
pub const MULTIBOOT_MMAP_MAX_SIZE: u64 = 0x100;
pub const MULTIBOOT_MODS_START: u64 = 0x2000;
pub const MULTIBOOT_MODS_MAX_SIZE: u64 = 0x4000;
/// The PVH `hvm_start_info`.
pub const PVH_START_INFO: u64 = 0x6000;
/// The PVH module list (one entry: the initrd), right after the start info.
pub const PVH_MODLIST_START: u64 = 0x6040;
/// The Linux zero page (`struct boot_params`).
pub const ZERO_PAGE_START: u64 = 0x7000;
/// The PVH memory map (`hvm_memmap_table_entry` array).
pub const PVH_MEMMAP_START: u64 = 0x8000;
/// Identity-mapping page tables: PML4, then PDPT, then four page directories.
pub const PML4_START: u64 = 0x9000;
pub const PDPT_START: u64 = 0xa000;
pub const PD_START: u64 = 0xb000;
/// Initial stack pointer (the stack grows down from here towards the page directories' end).
pub const BOOT_STACK_POINTER: u64 = 0xfff0;
/// The kernel command line (and, for multiboot, the modules' command lines and the boot loader
/// name after it).
pub const CMDLINE_START: u64 = 0x2_0000;
/// Room for the command line, including its terminating NUL.
pub const CMDLINE_MAX_SIZE: usize = 0x1_0000;

/// End (exclusive) of the RAM below 4 GiB.
pub fn low_ram_end(ram_size: u64) -> u64 {
    ram_size.min(PCI_HOLE_START)
}

/// The guest's RAM as `(guest physical address, length)` pairs: one region below the PCI hole
/// and, when RAM exceeds it, the rest starting at 4 GiB.
pub fn ram_regions(ram_size: u64) -> Vec<(u64, u64)> {
    let mut regions = Vec::with_capacity(2);
    let low = low_ram_end(ram_size);
    if low > 0 {
        regions.push((0, low));
    }
    if ram_size > low {
        regions.push((HIGH_RAM_START, ram_size - low));
    }
    regions
}

/// Types of e820 entries (ACPI spec 6.5, table 15.1 "Address Range Types").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Kind {
    Ram = 1,
    Reserved = 2,
    Acpi = 3,
    Nvs = 4,
}

/// One entry of the BIOS e820 memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Kind,
}

/// The memory map a guest of `ram_size` bytes sees through e820 (or the PVH memmap).
pub fn e820_map(ram_size: u64) -> Vec<E820Entry> {
    let mut map = Vec::with_capacity(5);
    let mut push = |addr: u64, end: u64, kind: E820Kind| {
        if end > addr {
            map.push(E820Entry { addr, size: end - addr, kind });
        }
    };
    let low_end = low_ram_end(ram_size);
    push(0, low_end.min(EBDA_START), E820Kind::Ram);
    push(EBDA_START, CONVENTIONAL_MEMORY_END, E820Kind::Reserved);
    push(ACPI_TABLES_START, ACPI_TABLES_END, E820Kind::Reserved);
    push(HIGH_MEMORY_START, low_end, E820Kind::Ram);
    push(HIGH_RAM_START, HIGH_RAM_START + (ram_size - low_end), E820Kind::Ram);
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn ram_total(map: &[E820Entry]) -> u64 {
        map.iter().filter(|e| e.kind == E820Kind::Ram).map(|e| e.size).sum()
    }

    fn assert_sorted_disjoint(map: &[E820Entry]) {
        for w in map.windows(2) {
            assert!(w[0].addr + w[0].size <= w[1].addr, "{map:?}");
        }
    }

    #[test]
    fn e820_for_256_mib() {
        let map = e820_map(256 * MIB);
        assert_sorted_disjoint(&map);
        assert_eq!(map.len(), 4);
        assert_eq!(map[0], E820Entry { addr: 0, size: 0x9_fc00, kind: E820Kind::Ram });
        assert_eq!(map[1], E820Entry { addr: 0x9_fc00, size: 0x400, kind: E820Kind::Reserved });
        assert_eq!(map[2], E820Entry { addr: 0xe_0000, size: 0x2_0000, kind: E820Kind::Reserved });
        assert_eq!(map[3], E820Entry { addr: MIB, size: 255 * MIB, kind: E820Kind::Ram });
        // Everything but the legacy first MiB is usable.
        assert_eq!(ram_total(&map), 256 * MIB - (MIB - 0x9_fc00));
        assert_eq!(ram_regions(256 * MIB), vec![(0, 256 * MIB)]);
    }

    #[test]
    fn e820_for_5_gib_splits_around_the_pci_hole() {
        let map = e820_map(5 * GIB);
        assert_sorted_disjoint(&map);
        assert_eq!(map.len(), 5);
        assert_eq!(map[3], E820Entry { addr: MIB, size: 0xe000_0000 - MIB, kind: E820Kind::Ram });
        let above = 5 * GIB - 0xe000_0000;
        assert_eq!(map[4], E820Entry { addr: 4 * GIB, size: above, kind: E820Kind::Ram });
        // No RAM inside the PCI hole.
        assert!(map.iter().all(|e| e.addr + e.size <= PCI_HOLE_START || e.addr >= 4 * GIB));
        assert_eq!(ram_regions(5 * GIB), vec![(0, 0xe000_0000), (4 * GIB, above)]);
        let total: u64 = ram_regions(5 * GIB).iter().map(|r| r.1).sum();
        assert_eq!(total, 5 * GIB);
    }

    #[test]
    fn ram_exactly_filling_low_memory_has_no_high_region() {
        assert_eq!(ram_regions(PCI_HOLE_START), vec![(0, PCI_HOLE_START)]);
        assert!(e820_map(PCI_HOLE_START).iter().all(|e| e.addr < 4 * GIB));
    }

    #[test]
    fn fixed_boot_structures_fit_below_the_ebda_and_do_not_overlap() {
        let mut areas = [
            (BOOT_GDT_START, 8 * 8),
            (MULTIBOOT_INFO_START, 88),
            (MULTIBOOT_MMAP_START, MULTIBOOT_MMAP_MAX_SIZE),
            (MULTIBOOT_MODS_START, MULTIBOOT_MODS_MAX_SIZE),
            (PVH_START_INFO, 0x40),
            (PVH_MODLIST_START, 0x20),
            (ZERO_PAGE_START, 0x1000),
            (PVH_MEMMAP_START, 0x1000),
            (PML4_START, 0x1000),
            (PDPT_START, 0x1000),
            (PD_START, 4 * 0x1000),
            (BOOT_STACK_POINTER - 0x800, 0x800),
            (CMDLINE_START, CMDLINE_MAX_SIZE as u64),
        ];
        areas.sort();
        for w in areas.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{:#x?} overlaps {:#x?}", w[0], w[1]);
        }
        let last = areas.last().unwrap();
        assert!(last.0 + last.1 <= EBDA_START);
    }
}

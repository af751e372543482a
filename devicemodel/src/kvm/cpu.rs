//! vCPU state at power-on: CPUID, FPU, local APIC wiring, and the registers a boot protocol wants.

use kvm_bindings::{kvm_fpu, kvm_segment, CpuId};
use kvm_ioctls::VcpuFd;

/// Where a vCPU starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuStart {
    /// The architectural reset state (CS:IP = f000:fff0 with CS base 0xffff0000): firmware boot,
    /// and every application processor (they wait for INIT/SIPI in the kernel's LAPIC).
    Reset,
    /// A boot protocol's entry state, described without KVM types by the firmware crate.
    Boot(Box<firmware::linux::CpuBootState>),
}

fn segment(s: &firmware::linux::Segment) -> kvm_segment {
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: s.type_,
        present: s.present as u8,
        dpl: s.dpl,
        db: s.db as u8,
        s: s.s as u8,
        l: s.l as u8,
        g: s.g as u8,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// CPUID for vCPU `index` of `count`: what KVM supports, with this vCPU's APIC id and the
/// hypervisor bit, and the TSC-deadline timer when the in-kernel LAPIC emulates it (KVM leaves
/// that bit to userspace because it is not a host CPU feature).
pub fn cpuid_for(base: &CpuId, index: u8, count: u8, tsc_deadline: bool) -> CpuId {
    let mut cpuid = base.clone();
    for e in cpuid.as_mut_slice() {
        match e.function {
            1 => {
                // EBX[31:24] initial APIC id, EBX[23:16] logical processors per package.
                e.ebx = (e.ebx & 0x0000_ffff) | ((index as u32) << 24) | ((count as u32) << 16);
                e.ecx |= 1 << 31; // a hypervisor is present
                if tsc_deadline {
                    e.ecx |= 1 << 24;
                }
                if count > 1 {
                    e.edx |= 1 << 28; // HTT: the EBX[23:16] count is valid
                }
            }
            0xb | 0x1f => e.edx = index as u32, // x2APIC id
            _ => {}
        }
    }
    cpuid
}

pub fn setup(vcpu: &VcpuFd, cpuid: &CpuId, start: &CpuStart) -> Result<(), String> {
    vcpu.set_cpuid2(cpuid).map_err(|e| format!("KVM_SET_CPUID2: {e}"))?;
    let fpu = kvm_fpu { fcw: 0x37f, mxcsr: 0x1f80, ..Default::default() };
    vcpu.set_fpu(&fpu).map_err(|e| format!("KVM_SET_FPU: {e}"))?;
    setup_lapic(vcpu)?;
    let CpuStart::Boot(b) = start else { return Ok(()) };
    let mut sregs = vcpu.get_sregs().map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    let (code, data) = b.segments();
    sregs.cs = segment(&code);
    sregs.ds = segment(&data);
    sregs.es = segment(&data);
    sregs.fs = segment(&data);
    sregs.gs = segment(&data);
    sregs.ss = segment(&data);
    sregs.tr = segment(&b.tss());
    sregs.ldt = kvm_segment { unusable: 1, ..Default::default() };
    sregs.gdt.base = b.gdt_base;
    sregs.gdt.limit = b.gdt_limit;
    sregs.idt.base = b.idt_base;
    sregs.idt.limit = b.idt_limit;
    sregs.cr0 = b.cr0;
    sregs.cr3 = b.cr3;
    sregs.cr4 = b.cr4;
    sregs.efer = b.efer;
    vcpu.set_sregs(&sregs).map_err(|e| format!("KVM_SET_SREGS: {e}"))?;
    let mut regs = vcpu.get_regs().map_err(|e| format!("KVM_GET_REGS: {e}"))?;
    regs.rflags = b.rflags | 2; // bit 1 is reserved-one
    regs.rip = b.rip;
    regs.rsp = b.rsp;
    regs.rbp = b.rsp;
    regs.rax = b.rax;
    regs.rbx = b.rbx;
    regs.rsi = b.rsi;
    vcpu.set_regs(&regs).map_err(|e| format!("KVM_SET_REGS: {e}"))?;
    Ok(())
}

/// Local APIC LVT LINT0 as ExtINT (the 8259 PIC's output, virtual wire mode) and LINT1 as NMI, as
/// a PC BIOS leaves them (MP spec 1.4 section 3.6.2.2); Linux relies on it before it sets up the
/// IOAPIC.
fn setup_lapic(vcpu: &VcpuFd) -> Result<(), String> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const DELIVERY_EXTINT: u32 = 7 << 8;
    const DELIVERY_NMI: u32 = 4 << 8;
    let mut lapic = vcpu.get_lapic().map_err(|e| format!("KVM_GET_LAPIC: {e}"))?;
    let mut put = |off: usize, mode: u32| {
        let mut v = [0u8; 4];
        for (i, b) in v.iter_mut().enumerate() {
            *b = lapic.regs[off + i] as u8;
        }
        let val = (u32::from_le_bytes(v) & !0x700) | mode;
        for (i, b) in val.to_le_bytes().iter().enumerate() {
            lapic.regs[off + i] = *b as _;
        }
    };
    put(LVT_LINT0, DELIVERY_EXTINT);
    put(LVT_LINT1, DELIVERY_NMI);
    vcpu.set_lapic(&lapic).map_err(|e| format!("KVM_SET_LAPIC: {e}"))
}

//! The KVM backend: a VM with the in-kernel irqchip and PIT, guest RAM from vm-memory, vCPU
//! threads whose port-I/O and MMIO exits all go into the machine's [`devices::bus::IoBus`].

pub mod cpu;
pub mod interrupts;
pub mod vram;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use devices::vm_control::{VmControl, VmRequest};
use kvm_bindings::{
    kvm_pit_config, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY,
    KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryRegion, MmapRegion};
use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

use crate::guest_ram::GuestRam;
use crate::machine::{Machine, MachineError, StopReason};
use cpu::CpuStart;

/// Where KVM puts the TSS and identity-map pages it needs for real-mode emulation on Intel
/// (three pages just below a 256 KiB BIOS at the top of 4 GiB, as QEMU does).
const KVM_TSS_ADDRESS: usize = 0xfffb_d000;
const KVM_IDENTITY_MAP_ADDRESS: u64 = 0xfffb_c000;

/// A vCPU thread's pthread handle, to signal it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct VcpuThread(libc::pthread_t);

// SAFETY: a pthread_t is an opaque handle (a pointer on musl) that is only passed to
// pthread_kill; it is valid on any thread while the thread it names is alive, which
// `RunControl` guarantees by removing the handle, under its lock, before the thread exits.
unsafe impl Send for VcpuThread {}

/// Why the machine stopped and how the main loop learns about it.
pub struct RunControl {
    stop: Mutex<Option<StopReason>>,
    changed: Condvar,
    /// vCPUs wait here while the guest is paused (`-S` until `cont`, QMP `stop`).
    running: Mutex<bool>,
    resumed: Condvar,
    /// The vCPU threads (to kick them out of KVM_RUN) and how many are parked.
    vcpu_threads: Mutex<Vec<VcpuThread>>,
    parked: Mutex<usize>,
    parked_changed: Condvar,
    /// (vCPU index, host thread id) of every vCPU that started, for QMP `query-cpus-fast`.
    vcpu_tids: Mutex<Vec<(u32, i64)>>,
    vcpu_observer: Mutex<Option<VcpuObserver>>,
}

/// Told the (index, host thread id) of the vCPUs once they all started.
pub type VcpuObserver = Box<dyn Fn(&[(u32, i64)]) + Send>;

impl RunControl {
    pub fn new(start_running: bool) -> Self {
        RunControl {
            stop: Mutex::new(None),
            changed: Condvar::new(),
            running: Mutex::new(start_running),
            resumed: Condvar::new(),
            vcpu_threads: Mutex::new(Vec::new()),
            parked: Mutex::new(0),
            parked_changed: Condvar::new(),
            vcpu_tids: Mutex::new(Vec::new()),
            vcpu_observer: Mutex::new(None),
        }
    }

    pub fn stop(&self, reason: StopReason) {
        let mut s = self.stop.lock().unwrap();
        if s.is_none() {
            *s = Some(reason);
        }
        self.changed.notify_all();
        self.resumed.notify_all();
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop.lock().unwrap().clone()
    }

    /// Waits for a stop, however long it takes.
    pub fn wait_for_stop(&self) -> StopReason {
        let s = self.stop.lock().unwrap();
        let s = self.changed.wait_while(s, |s| s.is_none()).unwrap();
        s.clone().unwrap_or(StopReason::Signal)
    }

    pub fn is_running(&self) -> bool {
        *self.running.lock().unwrap()
    }

    pub fn resume(&self) {
        *self.running.lock().unwrap() = true;
        self.resumed.notify_all();
    }

    /// Stops the vCPUs and returns once every one of them is parked outside KVM_RUN (or the
    /// machine stopped).
    pub fn pause(&self) {
        *self.running.lock().unwrap() = false;
        loop {
            {
                let threads = self.vcpu_threads.lock().unwrap();
                let parked = *self.parked.lock().unwrap();
                if parked >= threads.len() || self.stop_reason().is_some() {
                    return;
                }
                for t in threads.iter() {
                    // SAFETY: `t` is a live vCPU thread of this process: a thread removes itself
                    // from the list, under this lock, before it exits. SIGRTMIN has a no-op handler.
                    unsafe { libc::pthread_kill(t.0, SIGRTMIN()) };
                }
            }
            let p = self.parked.lock().unwrap();
            let _ = self.parked_changed.wait_timeout(p, Duration::from_millis(5)).unwrap();
        }
    }

    /// Called on a vCPU thread: waits while the guest is paused.
    fn park_while_paused(&self) {
        let r = self.running.lock().unwrap();
        if *r {
            return;
        }
        *self.parked.lock().unwrap() += 1;
        self.parked_changed.notify_all();
        let _r = self.resumed.wait_while(r, |r| !*r && self.stop.lock().unwrap().is_none()).unwrap();
        *self.parked.lock().unwrap() -= 1;
    }

    fn register_vcpu_thread(&self, index: usize) {
        // SAFETY: pthread_self has no preconditions.
        self.vcpu_threads.lock().unwrap().push(VcpuThread(unsafe { libc::pthread_self() }));
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as i64;
        self.vcpu_tids.lock().unwrap().push((index as u32, tid));
        self.parked_changed.notify_all();
    }

    pub fn set_vcpu_observer(&self, observer: VcpuObserver) {
        *self.vcpu_observer.lock().unwrap() = Some(observer);
    }

    /// Waits (briefly) until `count` vCPU threads have started and returns their (index, tid).
    pub fn started_vcpus(&self, count: usize) -> Vec<(u32, i64)> {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let mut tids = self.vcpu_tids.lock().unwrap().clone();
            if tids.len() >= count || std::time::Instant::now() > deadline {
                tids.sort();
                return tids;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn unregister_vcpu_thread(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = VcpuThread(unsafe { libc::pthread_self() });
        self.vcpu_threads.lock().unwrap().retain(|t| *t != me);
        self.parked_changed.notify_all();
    }
}

/// KVM's dirty log of guest RAM (vCPU writes). Device writes are in the vm-memory bitmap
/// (`DeviceRam::take_device_dirty_bitmaps`); migration merges both.
pub struct KvmDirtyLog {
    vm: Arc<VmFd>,
    /// Keeps the mappings behind `ram_slots` alive.
    ram: Arc<GuestRam>,
    ram_slots: Vec<(u32, u64, u64, u64)>,
}

// The harvest side has no caller until KVM RAM migration exists (only Xen migrates today).
#[allow(dead_code)]
impl KvmDirtyLog {
    /// Guest page frames written since the last call, by the vCPUs (KVM_GET_DIRTY_LOG) or by
    /// devices (the vm-memory bitmap), sorted.
    pub fn take_dirty_pages(&self) -> Result<Vec<u64>, String> {
        let mut bitmaps = self
            .ram_slots
            .iter()
            .map(|&(slot, gpa, len, _)| {
                self.vm
                    .get_dirty_log(slot, len as usize)
                    .map(|b| (gpa, b))
                    .map_err(|e| format!("KVM_GET_DIRTY_LOG: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        bitmaps.extend(crate::guest_ram::DeviceRam::new(self.ram.clone()).take_device_dirty_bitmaps());
        Ok(crate::migration::dirty::dirty_pages(&bitmaps))
    }
}

impl crate::migration::dirty::DirtyLog for KvmDirtyLog {
    /// Turns KVM's dirty-page logging on or off for all of guest RAM.
    fn set_dirty_logging(&self, on: bool) -> Result<(), String> {
        for &(slot, gpa, len, host) in &self.ram_slots {
            let flags = if on { KVM_MEM_LOG_DIRTY_PAGES } else { 0 };
            let region = kvm_userspace_memory_region {
                slot,
                flags,
                guest_phys_addr: gpa,
                memory_size: len,
                userspace_addr: host,
            };
            // SAFETY: the same live RAM mapping as when the slot was created (kept alive by
            // `self.ram`); only the flags change.
            unsafe { self.vm.set_user_memory_region(region) }
                .map_err(|e| format!("KVM dirty logging on slot {slot}: {e}"))?;
        }
        Ok(())
    }
}

impl VmControl for RunControl {
    fn request(&self, request: VmRequest) {
        self.stop(match request {
            VmRequest::PowerOff => StopReason::PowerOff,
            VmRequest::Reset => StopReason::Reset,
            VmRequest::DebugExit(code) => StopReason::DebugExit(code),
        });
    }
}

pub struct KvmVm {
    vm: Arc<VmFd>,
    kvm: Kvm,
    ram: Arc<GuestRam>,
    /// Firmware ROM mappings (kept alive while KVM maps them).
    _roms: Vec<MmapRegion>,
    /// Memory slot numbers, shared with the VRAM service so they never collide.
    slots: Arc<vram::SlotAllocator>,
    /// Memory slots of guest RAM: (slot, guest address, size, host address).
    ram_slots: Vec<(u32, u64, u64, u64)>,
}

impl KvmVm {
    pub fn new(ram: Arc<GuestRam>) -> Result<Self, String> {
        let kvm = Kvm::new()
            .map_err(|e| format!("cannot open /dev/kvm: {e} (is the kvm module loaded and /dev/kvm accessible?)"))?;
        let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
        vm.set_tss_address(KVM_TSS_ADDRESS).map_err(|e| format!("KVM_SET_TSS_ADDR: {e}"))?;
        vm.set_identity_map_address(KVM_IDENTITY_MAP_ADDRESS).map_err(|e| format!("KVM_SET_IDENTITY_MAP_ADDR: {e}"))?;
        vm.create_irq_chip().map_err(|e| format!("KVM_CREATE_IRQCHIP: {e}"))?;
        let pit = kvm_pit_config { flags: KVM_PIT_SPEAKER_DUMMY, ..Default::default() };
        vm.create_pit2(pit).map_err(|e| format!("KVM_CREATE_PIT2: {e}"))?;
        let mut this =
            KvmVm { vm: Arc::new(vm), kvm, ram, _roms: Vec::new(), slots: Arc::default(), ram_slots: Vec::new() };
        let regions: Vec<(u64, u64, u64)> = this
            .ram
            .iter()
            .map(|r| {
                (
                    r.start_addr().0,
                    r.len(),
                    r.get_host_address(vm_memory::MemoryRegionAddress(0)).map(|p| p as u64).unwrap_or(0),
                )
            })
            .collect();
        for (gpa, len, host) in regions {
            let slot = this.map(gpa, len, host, 0)?;
            this.ram_slots.push((slot, gpa, len, host));
        }
        Ok(this)
    }

    pub fn vm(&self) -> Arc<VmFd> {
        self.vm.clone()
    }

    /// Video memory for display devices: its own dirty-logged memory slots while BAR0 decodes.
    pub fn vram_service(&self) -> Arc<vram::KvmVram> {
        Arc::new(vram::KvmVram::new(self.vm.clone(), self.slots.clone()))
    }

    fn map(&mut self, gpa: u64, len: u64, host: u64, flags: u32) -> Result<u32, String> {
        let slot = self.slots.next();
        let region =
            kvm_userspace_memory_region { slot, flags, guest_phys_addr: gpa, memory_size: len, userspace_addr: host };
        // SAFETY: `host..host+len` is a live mapping owned by `self.ram` or `self._roms`, both kept
        // alive as long as the VM (and so the memory slot) exists.
        unsafe { self.vm.set_user_memory_region(region) }
            .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION {gpa:#x}+{len:#x}: {e}"))?;
        Ok(slot)
    }

    /// Maps a read-only firmware image at `gpa`; guest writes to it become MMIO exits the bus drops.
    pub fn map_rom(&mut self, gpa: u64, image: &[u8]) -> Result<(), String> {
        let len = image.len().next_multiple_of(4096);
        let rom = MmapRegion::new(len).map_err(|e| format!("cannot allocate {len} bytes for a ROM: {e}"))?;
        // MmapRegion gives us a fresh anonymous mapping; fill it through a VolatileSlice.
        use vm_memory::VolatileMemory;
        rom.get_slice(0, image.len()).map_err(|e| e.to_string())?.copy_from(image);
        let host = rom.as_ptr() as u64;
        self._roms.push(rom);
        self.map(gpa, len as u64, host, KVM_MEM_READONLY)?;
        Ok(())
    }

    /// Dirty-page logging of this VM's guest RAM, for migration.
    pub fn dirty_log(&self) -> Arc<KvmDirtyLog> {
        Arc::new(KvmDirtyLog { vm: self.vm.clone(), ram: self.ram.clone(), ram_slots: self.ram_slots.clone() })
    }

    /// Creates the vCPUs, runs them until the machine stops, and returns why it stopped.
    pub fn run(
        &self,
        machine: &Machine,
        control: Arc<RunControl>,
        boot: CpuStart,
        cpus: u8,
    ) -> Result<StopReason, MachineError> {
        extern "C" fn kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}
        register_signal_handler(SIGRTMIN(), kick)
            .map_err(|e| MachineError(format!("cannot install the vCPU kick signal: {e}")))?;
        let base_cpuid = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| MachineError(format!("KVM_GET_SUPPORTED_CPUID: {e}")))?;
        let tsc_deadline = self.kvm.check_extension(kvm_ioctls::Cap::TscDeadlineTimer);
        let mut vcpus = Vec::new();
        for i in 0..cpus {
            let vcpu = self.vm.create_vcpu(i as u64).map_err(|e| MachineError(format!("KVM_CREATE_VCPU {i}: {e}")))?;
            let start = if i == 0 { boot.clone() } else { CpuStart::Reset };
            cpu::setup(&vcpu, &cpu::cpuid_for(&base_cpuid, i, cpus, tsc_deadline), &start)
                .map_err(|e| MachineError(format!("vCPU {i}: {e}")))?;
            vcpus.push(vcpu);
        }
        let exiting = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<JoinHandle<()>> = Vec::new();
        for (i, vcpu) in vcpus.into_iter().enumerate() {
            let bus = machine.bus.clone();
            let control = control.clone();
            let exiting = exiting.clone();
            let t = std::thread::Builder::new()
                .name(format!("vcpu{i}"))
                .spawn(move || vcpu_loop(i, vcpu, &bus, &control, &exiting))
                .map_err(|e| MachineError(format!("cannot start vCPU thread {i}: {e}")))?;
            threads.push(t);
        }
        let started = control.started_vcpus(cpus as usize);
        if let Some(observer) = control.vcpu_observer.lock().unwrap().as_ref() {
            observer(&started);
        }
        // Signals reach us as a stop too: the session's event loop turns them into QMP's `quit`.
        let reason = control.wait_for_stop();
        exiting.store(true, Ordering::SeqCst);
        // A vCPU blocked in KVM_RUN (e.g. halted) leaves it only when signalled; keep kicking
        // until every thread has noticed, since a kick that lands before KVM_RUN is lost.
        while threads.iter().any(|t| !t.is_finished()) {
            for t in threads.iter().filter(|t| !t.is_finished()) {
                let _ = t.kill(SIGRTMIN());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for t in threads {
            let _ = t.join();
        }
        Ok(reason)
    }
}

fn vcpu_loop(index: usize, mut vcpu: VcpuFd, bus: &devices::bus::IoBus, control: &RunControl, exiting: &AtomicBool) {
    control.register_vcpu_thread(index);
    while !exiting.load(Ordering::SeqCst) {
        control.park_while_paused();
        if exiting.load(Ordering::SeqCst) {
            break;
        }
        // Port I/O is finished after the exit's borrow of the vCPU ends, because a string
        // instruction (`rep ins/outs`) arrives as one exit of `count` accesses of `size` bytes
        // and only kvm_run says which.
        let mut pio: Option<(u16, *mut u8, usize, bool)> = None;
        match vcpu.run() {
            Ok(exit) => match exit {
                VcpuExit::IoIn(port, data) => pio = Some((port, data.as_mut_ptr(), data.len(), true)),
                VcpuExit::IoOut(port, data) => pio = Some((port, data.as_ptr() as *mut u8, data.len(), false)),
                VcpuExit::MmioRead(addr, data) => bus.mmio_read(addr, data),
                VcpuExit::MmioWrite(addr, data) => bus.mmio_write(addr, data),
                VcpuExit::Shutdown => {
                    // A triple fault: the PC resets.
                    log::info!("vCPU {index}: triple fault, resetting");
                    control.stop(StopReason::Reset);
                }
                VcpuExit::SystemEvent(kind, _) => match kind {
                    kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN => control.stop(StopReason::PowerOff),
                    kvm_bindings::KVM_SYSTEM_EVENT_RESET => control.stop(StopReason::Reset),
                    other => control.stop(StopReason::Error(format!("vCPU {index}: KVM system event {other}"))),
                },
                VcpuExit::Hlt => {
                    // With the in-kernel LAPIC, HLT only exits when the vCPU can never wake.
                    control.stop(StopReason::Error(format!("vCPU {index} halted with interrupts disabled")));
                }
                VcpuExit::Intr => {}
                VcpuExit::FailEntry(reason, cpu) => control.stop(StopReason::Error(format!(
                    "vCPU {index}: KVM entry failed, reason {reason:#x} on cpu {cpu}"
                ))),
                VcpuExit::InternalError => {
                    let regs = vcpu.get_regs().map(|r| format!("rip={:#x}", r.rip)).unwrap_or_default();
                    control
                        .stop(StopReason::Error(format!("vCPU {index}: KVM internal error (emulation failure) {regs}")))
                }
                other => {
                    control.stop(StopReason::Error(format!("vCPU {index}: unexpected KVM exit {other:?}")));
                }
            },
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                vcpu.set_kvm_immediate_exit(0);
            }
            Err(e) => control.stop(StopReason::Error(format!("vCPU {index}: KVM_RUN: {e}"))),
        }
        if let Some((port, ptr, len, is_in)) = pio {
            // SAFETY: the last exit was KVM_EXIT_IO, so `io` is the union member the kernel filled.
            let io = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.io };
            let size = io.size as usize;
            if !matches!(size, 1 | 2 | 4) || size.checked_mul(io.count as usize) != Some(len) {
                control.stop(StopReason::Error(format!("vCPU {index}: inconsistent port I/O exit at {port:#x}")));
                continue;
            }
            // `ptr..ptr+len` is the I/O data area inside this vCPU's kvm_run mapping, which lives
            // as long as `vcpu`; KVM does not touch it until the next KVM_RUN.
            // SAFETY: in bounds of a live mapping, and the exit's borrow has ended (no alias).
            let data = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
            for access in data.chunks_exact_mut(size) {
                if is_in {
                    bus.pio_read(port, access);
                } else {
                    bus.pio_write(port, access);
                }
            }
        }
    }
    control.unregister_vcpu_thread();
}

/// Copies a firmware image into place: the whole image as ROM ending at 4 GiB, and its last
/// 128 KiB into the legacy BIOS area 0xe0000-0xfffff (RAM, so the BIOS can shadow itself), as a
/// PC chipset aliases it.
pub fn load_bios(vm: &mut KvmVm, ram: &GuestRam, image: &[u8]) -> Result<(), String> {
    use vm_memory::Bytes;
    if image.is_empty() || !image.len().is_multiple_of(0x10000) || image.len() > 16 << 20 {
        return Err(format!(
            "a BIOS image must be a multiple of 64 KiB and at most 16 MiB (this one is {} bytes)",
            image.len()
        ));
    }
    vm.map_rom((1u64 << 32) - image.len() as u64, image)?;
    let low = &image[image.len().saturating_sub(0x20000)..];
    ram.write_slice(low, GuestAddress(0x10_0000 - low.len() as u64))
        .map_err(|e| format!("cannot copy the BIOS below 1 MiB: {e}"))
}

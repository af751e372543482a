//! Round trips of every device: drive it through its registers to a non-default state, save,
//! restore into a freshly built instance, and check the registers behave the same; and hostile
//! payloads for each (truncated, corrupted, random), which must be refused without a panic.

use std::sync::{Arc, Mutex};

use super::fuzz::hostile_payloads;
use super::*;
use crate::bus::{BusDevice, IoBus};
use crate::chipset::{i440fx::I440fx, piix3::Piix3, piix4_pm};
use crate::clock::ManualClock;
use crate::interrupt::{DisconnectedLine, InterruptLine, RecordingLine};
use crate::legacy::{cmos::Cmos, i8042::I8042, reset, serial::Serial};
use crate::pci::config::{BarKind, PciIds};
use crate::pci::msix::{MsixCapability, MsixLocation};
use crate::pci::{ConfigSpace, PciDevice};
use crate::vm_control::RecordingVmControl;

fn round_trip<T: Snapshot>(from: &T, to: &mut T) {
    let bytes = save_to_vec(from);
    restore_from(to, T::VERSION, &bytes).unwrap_or_else(|e| panic!("{e}"));
}

fn cfg_read(d: &mut dyn PciDevice, off: u16, len: usize) -> u32 {
    let mut b = [0u8; 4];
    d.config_read(off, &mut b[..len]);
    u32::from_le_bytes(b)
}

fn inb(d: &mut dyn BusDevice, port: u64) -> u8 {
    let mut b = [0u8];
    d.read(port, &mut b);
    b[0]
}

#[test]
fn config_space_keeps_bars_and_refuses_a_different_device() {
    let ids = PciIds { vendor_id: 0x1234, device_id: 0x1111, class: 3, ..Default::default() };
    let make = || {
        let mut c = ConfigSpace::new(ids);
        c.declare_bar(0, BarKind::Memory32 { prefetchable: true }, 0x100_0000).unwrap();
        c.declare_bar(2, BarKind::Io, 0x20).unwrap();
        c
    };
    let mut a = make();
    a.write(0x10, &0xfd00_0000u32.to_le_bytes());
    a.write(0x18, &0xc041u32.to_le_bytes());
    a.write(0x04, &3u16.to_le_bytes());
    a.write(0x3c, &[11]);
    let mut b = make();
    round_trip(&a, &mut b);
    assert_eq!(b.decoded_bars(), a.decoded_bars());
    assert_eq!(b.interrupt_line(), 11);
    // Sizing still works: the masks are the device's, not the stream's.
    b.write(0x10, &u32::MAX.to_le_bytes());
    assert_eq!(b.read_u32(0x10), 0xff00_0008);

    let mut other = ConfigSpace::new(PciIds { device_id: 0x2222, ..ids });
    let err = restore_from(&mut other, ConfigSpace::VERSION, &save_to_vec(&a)).unwrap_err();
    assert!(err.field.starts_with("config[0x02]"), "{err}");
    assert_eq!(other.read_u16(0x02), 0x2222, "a refused state changes nothing");
    hostile_payloads(make, &save_to_vec(&a));
}

#[test]
fn msix_table_and_enable_survive() {
    let sink = Arc::new(crate::pci::msi::tests::RecordingSink::default());
    let make = || {
        let mut c = ConfigSpace::new(PciIds::default());
        c.declare_bar(1, BarKind::Memory32 { prefetchable: false }, 0x1000).unwrap();
        let m = MsixCapability::new(
            &mut c,
            3,
            MsixLocation { bar: 1, offset: 0 },
            MsixLocation { bar: 1, offset: 0x800 },
            sink.clone(),
        )
        .unwrap();
        (c, m)
    };
    let (mut c, mut m) = make();
    m.bar_write(1, 16, &0xfee0_1000u64.to_le_bytes());
    m.bar_write(1, 24, &0x41u32.to_le_bytes());
    m.bar_write(1, 28, &0u32.to_le_bytes());
    c.write(m.offset() as u16 + 2, &0x8000u16.to_le_bytes());
    m.after_config_write(&c);
    m.fire(0); // masked: pending
    let (mut c2, mut m2) = make();
    round_trip(&c, &mut c2);
    round_trip(&m, &mut m2);
    assert!(m2.enabled() && m2.is_pending(0) && !m2.is_masked(1));
    assert_eq!(m2.fire(1), crate::pci::msi::MsiOutcome::Sent);
    assert_eq!(sink.take(), vec![(0xfee0_1000, 0x41)]);
    hostile_payloads(|| make().1, &save_to_vec(&m));
}

#[test]
fn pci_host_latch_survives_on_the_bus() {
    let a = IoBus::new();
    a.pio_write(0xcf8, &0x8000_0804u32.to_le_bytes());
    let mut w = StateWriter::new();
    a.save_pci_host(&mut w);
    let bytes = w.into_bytes();
    let b = IoBus::new();
    b.restore_pci_host(&mut StateReader::new("pci-host", 1, &bytes)).unwrap();
    let mut d = [0u8; 4];
    b.pio_read(0xcf8, &mut d);
    assert_eq!(u32::from_le_bytes(d), 0x8000_0804);
    hostile_payloads(crate::pci::PciRoot::new, &bytes);
}

#[test]
fn i440fx_pam_and_smram_lock_survive() {
    let mut a = I440fx::new();
    a.config_write(0x5c, &0x1111_3333u32.to_le_bytes());
    a.config_write(0x72, &[0x1a]); // D_LCK | G_SMRAME
    let mut b = I440fx::new();
    round_trip(&a, &mut b);
    assert_eq!(b.pam(3), Some(0x33));
    assert_eq!(b.pam(6), Some(0x11));
    b.config_write(0x72, &[0x4a]);
    assert_eq!(b.smram(), 0x1a, "still locked after the restore: D_OPEN cannot be set");
    hostile_payloads(I440fx::new, &save_to_vec(&a));
}

#[test]
fn piix3_routes_survive_and_the_observer_hears_all_of_them() {
    let mut a = Piix3::new();
    a.config_write(0x60, &0x8005_0b0au32.to_le_bytes());
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let mut b = Piix3::new();
    b.set_pirq_observer(Box::new(move |p, r| l.lock().unwrap().push((p, r))));
    round_trip(&a, &mut b);
    assert_eq!(b.pirq_routes(), [Some(10), Some(11), Some(5), None]);
    assert_eq!(*log.lock().unwrap(), vec![(0, Some(10)), (1, Some(11)), (2, Some(5)), (3, None)]);
    hostile_payloads(Piix3::new, &save_to_vec(&a));
}

#[test]
fn acpi_registers_sci_and_timer_survive() {
    let clock = Arc::new(ManualClock::new(0));
    let make = |sci: Arc<dyn InterruptLine>, clock: Arc<ManualClock>| {
        let f = piix4_pm::Piix4Pm::new(sci, Arc::new(RecordingVmControl::default()), clock);
        (f.pm_io(), f)
    };
    let (pm, mut f) = make(Arc::new(RecordingLine::default()), clock.clone());
    f.config_write(0x40, &0xb001u32.to_le_bytes());
    let mut apm = piix4_pm::ApmControl::new(pm.clone());
    apm.write(0xb2, &[piix4_pm::ACPI_ENABLE]);
    apm.write(0xb3, &[0x5a]);
    {
        let mut p = pm.lock().unwrap();
        p.write(piix4_pm::GPE0_BLK as u64 + 2, &[0x02, 0]);
        p.raise_gpe(1);
        p.write(piix4_pm::PM1A_EVT_BLK as u64 + 2, &piix4_pm::PM1_PWRBTN_EN.to_le_bytes());
    }
    clock.advance_ns(1_000_000_000);
    let ticks = pm.lock().unwrap().pm_timer();

    // The restoring host's clock is elsewhere entirely.
    let clock2 = Arc::new(ManualClock::new(0));
    clock2.advance_ns(5);
    let sci2 = Arc::new(RecordingLine::default());
    let (pm2, mut f2) = make(sci2.clone(), clock2.clone());
    round_trip(&f, &mut f2);
    round_trip(&*pm.lock().unwrap(), &mut *pm2.lock().unwrap());
    let mut apm2 = piix4_pm::ApmControl::new(pm2.clone());
    round_trip(&apm, &mut apm2);
    assert!(sci2.level(), "the SCI is asserted for the pending GPE");
    assert_eq!(cfg_read(&mut f2, 0x40, 4), 0xb001);
    assert_eq!(inb(&mut apm2, 0xb3), 0x5a);
    let p2 = pm2.lock().unwrap();
    assert!(p2.sci_enabled());
    assert_eq!(p2.pm_timer(), ticks, "the PM timer continues from where it was");
    clock2.advance_ns(1_000_000);
    assert_eq!(p2.pm_timer(), ticks + 3579);
    drop(p2);
    let saved = save_to_vec(&*pm.lock().unwrap());
    hostile_payloads(
        || {
            piix4_pm::PmIo::new(
                Arc::new(DisconnectedLine),
                Arc::new(RecordingVmControl::default()),
                Arc::new(ManualClock::new(0)),
            )
        },
        &saved,
    );
    hostile_payloads(|| make(Arc::new(DisconnectedLine), Arc::new(ManualClock::new(0))).1, &save_to_vec(&f));
}

#[test]
fn cmos_time_nvram_and_index_survive() {
    const T0: i64 = 1_700_000_000;
    // The timer's service runs nothing here: these checks drive registers, not time.
    let make = |clock: Arc<ManualClock>| {
        let timer =
            crate::timer::TimerService::timer(&*crate::timer::ManualTimers::new(clock.clone()), "rtc", Box::new(|| {}));
        Cmos::new(clock, Arc::new(DisconnectedLine), timer)
    };
    let mut a = make(Arc::new(ManualClock::new(T0)));
    // Set the year to 2042 (BCD) and write NVRAM byte 0x40.
    a.write(0x70, &[0x09]);
    a.write(0x71, &[0x42]);
    a.write(0x70, &[0x40]);
    a.write(0x71, &[0xab]);
    a.write(0x70, &[0x0b]);
    a.write(0x71, &[0x22]); // 24h, AIE
    a.write(0x70, &[0x05]);
    let mut b = make(Arc::new(ManualClock::new(T0)));
    round_trip(&a, &mut b);
    assert_eq!(inb(&mut b, 0x71), inb(&mut a, 0x71), "index register survives (hours alarm)");
    for idx in [0x09u8, 0x40, 0x0b, 0x00, 0x32] {
        a.write(0x70, &[idx]);
        b.write(0x70, &[idx]);
        assert_eq!(inb(&mut b, 0x71), inb(&mut a, 0x71), "register {idx:#x}");
    }
    hostile_payloads(|| make(Arc::new(ManualClock::new(T0))), &save_to_vec(&a));
}

#[test]
fn serial_registers_and_fifo_survive() {
    let make = || Serial::new(0x3f8, Arc::new(DisconnectedLine), Box::new(std::io::sink()));
    let mut a = make();
    a.write(0x3fb, &[0x80]);
    a.write(0x3f8, &[0x01]); // divisor 1 (115200)
    a.write(0x3fb, &[0x03]);
    a.write(0x3f9, &[0x01]); // RDA interrupt
    a.write(0x3ff, &[0x77]);
    a.enqueue_input(b"hi!");
    let mut b = make();
    round_trip(&a, &mut b);
    for port in [0x3f9u64, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff] {
        assert_eq!(inb(&mut b, port), inb(&mut a, port), "port {port:#x}");
    }
    let got: Vec<u8> = (0..3).map(|_| inb(&mut b, 0x3f8)).collect();
    assert_eq!(got, b"hi!");
    hostile_payloads(make, &save_to_vec(&a));
}

#[test]
fn i8042_command_byte_output_and_keyboard_survive() {
    let make =
        || I8042::new(Arc::new(DisconnectedLine), Arc::new(DisconnectedLine), Arc::new(RecordingVmControl::default()));
    let mut a = make();
    a.write(0x64, &[0x60]);
    a.write(0x60, &[0x45]); // translate, sys, kbd int
    a.write(0x60, &[0xed]); // set LEDs: ACK queued, argument pending
    a.write(0x64, &[0xd1]); // output port write pending as the next data byte's target
    a.push_scancodes(&[0x1e, 0x9e]);
    let mut b = make();
    round_trip(&a, &mut b);
    for _ in 0..3 {
        assert_eq!(inb(&mut b, 0x64), inb(&mut a, 0x64));
        assert_eq!(inb(&mut b, 0x60), inb(&mut a, 0x60));
    }
    b.write(0x60, &[0x01]); // output port: A20 off, reset line high
    assert!(!b.a20_enabled());
    hostile_payloads(make, &save_to_vec(&a));
}

#[test]
fn reset_ports_keep_a20_without_resetting() {
    let vm = Arc::new(RecordingVmControl::default());
    let mut a = reset::SystemControlPortA::new(vm.clone());
    a.write(0x92, &[0x03]);
    let mut b = reset::SystemControlPortA::new(vm.clone());
    vm.take();
    round_trip(&a, &mut b);
    assert!(b.a20_enabled());
    assert!(vm.take().is_empty(), "restoring the fast-reset bit is not a reset");
    b.write(0x92, &[0x03]);
    assert!(vm.take().is_empty(), "no 0 -> 1 transition");
    let mut rc = reset::ResetControl::new(vm.clone());
    rc.write(0xcf9, &[0x02]);
    let mut rc2 = reset::ResetControl::new(vm.clone());
    round_trip(&rc, &mut rc2);
    assert_eq!(inb(&mut rc2, 0xcf9), 0x02);
    assert!(vm.take().is_empty());
    hostile_payloads(|| reset::SystemControlPortA::new(vm.clone()), &save_to_vec(&a));
    hostile_payloads(|| reset::ResetControl::new(vm.clone()), &save_to_vec(&rc));
}

#[derive(Default)]
struct RomLockHost(Mutex<Vec<bool>>);
impl crate::xen_platform::XenPlatformHost for RomLockHost {
    fn unplug(&self, _: crate::xen_platform::UnplugRequest) {}
    fn set_rom_lock(&self, locked: bool) -> bool {
        self.0.lock().unwrap().push(locked);
        true
    }
}

#[test]
fn xen_platform_flags_are_reapplied_through_the_host() {
    let host = Arc::new(RomLockHost::default());
    let (fa, pa) = crate::xen_platform::new(host.clone());
    pa.lock().unwrap().write(0x10, &[1]);
    pa.lock().unwrap().write(0x12, &3u16.to_le_bytes());
    fa.lock().unwrap().config_write(0x10, &0xc101u32.to_le_bytes());
    let host2 = Arc::new(RomLockHost::default());
    let (fb, pb) = crate::xen_platform::new(host2.clone());
    round_trip(&*fa.lock().unwrap(), &mut *fb.lock().unwrap());
    assert_eq!(*host2.0.lock().unwrap(), vec![true], "the ROM lock is applied to the new domain");
    assert_eq!(inb(&mut *pb.lock().unwrap(), 0x10), 1);
    assert_eq!(fb.lock().unwrap().driver_product(), Some(3));
    assert_eq!(fb.lock().unwrap().decoded_bars()[0].base, 0xc100);
    let saved = save_to_vec(&*fa.lock().unwrap());
    hostile_payloads(
        || {
            let (f, _) = crate::xen_platform::new(Arc::new(RomLockHost::default()));
            Arc::try_unwrap(f).ok().unwrap().into_inner().unwrap()
        },
        &saved,
    );
}

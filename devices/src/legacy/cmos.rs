//! MC146818 real-time clock and CMOS NVRAM at ports 0x70 (index) and 0x71 (data), 128 bytes,
//! interrupt on ISA IRQ 8.
//!
//! Register behaviour follows the Motorola MC146818A datasheet ("Address Map", "Registers A-D",
//! "Update cycle", "Interrupts"); the NVRAM layout above 0x0e is the IBM PC/AT one that QEMU's
//! `hw/i386/pc.c:pc_cmos_init` documents and SeaBIOS reads (`src/hw/rtc.h`, `src/fw/paravirt.c`).
//!
//! Time is never stored as a ticking register file: the date is computed from the machine's
//! [`Clock`] plus an offset the guest moves by writing the time registers, so the clock runs
//! exactly as the host's does (also across a paused VM). Interrupt flags are derived lazily from
//! the clock whenever the guest reads register C or writes register A or B.
//!
//! The RTC wakes the host only for interrupts the guest can receive: after every change it arms
//! one timer for the earliest of the next periodic tick (PIE), the next second (UIE) and the next
//! second the alarm matches (AIE), and none at all while IRQF is set, since no new interrupt can
//! assert before the guest reads register C. An idle guest with its RTC interrupts off costs no
//! wake-ups.
//!
//! Under Xen, the hypervisor emulates registers 0x00-0x0d itself and forwards only NVRAM indices;
//! the full emulation here serves KVM and is harmless there.

use std::sync::Arc;

use crate::bus::BusDevice;
use crate::clock::Clock;
use crate::interrupt::InterruptLine;
use crate::timer::{shared_with_timer, Timer, TimerService};

use super::{read_bytes, write_bytes};

pub const INDEX_PORT: u64 = 0x70;
pub const DATA_PORT: u64 = 0x71;
pub const RTC_IRQ: u32 = 8;

const CMOS_SIZE: usize = 128;

// Time and alarm registers (datasheet Table 3, "Time, calendar and alarm data modes").
const REG_SECONDS: usize = 0x00;
const REG_SECONDS_ALARM: usize = 0x01;
const REG_MINUTES: usize = 0x02;
const REG_MINUTES_ALARM: usize = 0x03;
const REG_HOURS: usize = 0x04;
const REG_HOURS_ALARM: usize = 0x05;
const REG_DAY_OF_WEEK: usize = 0x06;
const REG_DAY_OF_MONTH: usize = 0x07;
const REG_MONTH: usize = 0x08;
const REG_YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
/// The century byte (IBM PC/AT layout; the ACPI FADT "CENTURY" field points here).
const REG_CENTURY: usize = 0x32;

/// Registers that hold the current time.
const TIME_REGS: [usize; 8] =
    [REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH, REG_YEAR, REG_CENTURY];

// Register A: UIP (bit 7, read-only), DV2-0 divider (bits 6:4), RS3-0 rate select (bits 3:0).
const A_UIP: u8 = 0x80;
const A_RATE_MASK: u8 = 0x0f;
// Register B.
const B_SET: u8 = 0x80;
const B_PIE: u8 = 0x40;
const B_AIE: u8 = 0x20;
const B_UIE: u8 = 0x10;
const B_SQWE: u8 = 0x08;
const B_BINARY: u8 = 0x04;
const B_24H: u8 = 0x02;
// Register C (read-only, cleared by reading).
const C_IRQF: u8 = 0x80;
const C_PF: u8 = 0x40;
const C_AF: u8 = 0x20;
const C_UF: u8 = 0x10;
// Register D: valid RAM and time (battery good).
const D_VRT: u8 = 0x80;
/// An alarm byte with both top bits set matches any value ("don't care").
const ALARM_DONT_CARE: u8 = 0xc0;

/// Power-on register A: 32.768 kHz time base (DV = 010), 1024 Hz periodic rate (RS = 0110).
const A_DEFAULT: u8 = 0x26;
/// Power-on register B: BCD, 24-hour.
const B_DEFAULT: u8 = B_24H;

// PC/AT NVRAM layout (QEMU pc_cmos_init; SeaBIOS rtc.h).
const NV_BASE_MEM_LO: usize = 0x15;
const NV_EXT_MEM_LO: usize = 0x17;
const NV_BOOT_FLAGS_2: usize = 0x38;
const NV_BOOT_FLAGS_1: usize = 0x3d;
const NV_EXT_MEM2_LO: usize = 0x30;
const NV_MEM_ABOVE_16M_LO: usize = 0x34;
const NV_MEM_ABOVE_4G: usize = 0x5b;
const NV_CPU_COUNT: usize = 0x5f;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A broken-down UTC date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The inverse of [`civil_from_days`]; `month` must be 1-12, `day` may run past the month's end
/// (it rolls over, which is what setting "February 31st" means to us).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl DateTime {
    fn from_unix(t: i64) -> Self {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    fn to_unix(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Error from [`Cmos::set_boot_order`].
#[derive(Debug, PartialEq, Eq)]
pub struct BootOrderError(pub String);

impl std::fmt::Display for BootOrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid boot order: {}", self.0)
    }
}

impl std::error::Error for BootOrderError {}

pub struct Cmos {
    regs: [u8; CMOS_SIZE],
    index: u8,
    /// Guest time minus host time, in seconds.
    offset_s: i64,
    /// The last guest second the update/alarm logic has accounted for.
    last_second: i64,
    /// The number of whole periodic-interrupt periods since the clock's origin already accounted.
    periodic_index: u64,
    clock: Arc<dyn Clock>,
    irq: Arc<dyn InterruptLine>,
    /// Fires at the next event an enabled interrupt waits for.
    timer: Box<dyn Timer>,
    /// The deadline `timer` is armed for, so that unchanged state costs no re-arming.
    armed: Option<u64>,
}

impl Cmos {
    /// An RTC showing `clock`'s time (UTC), interrupting through `irq` (ISA IRQ 8). `timer`'s
    /// expiry must call back into this device (see [`Cmos::new_shared`], which wires that up),
    /// and its deadlines must be on `clock`.
    pub fn new(clock: Arc<dyn Clock>, irq: Arc<dyn InterruptLine>, timer: Box<dyn Timer>) -> Self {
        let mut regs = [0u8; CMOS_SIZE];
        regs[REG_A] = A_DEFAULT;
        regs[REG_B] = B_DEFAULT;
        regs[REG_D] = D_VRT;
        let mut cmos =
            Cmos { regs, index: 0, offset_s: 0, last_second: 0, periodic_index: 0, clock, irq, timer, armed: None };
        cmos.last_second = cmos.guest_now();
        cmos.restart_periodic();
        cmos.refresh_time();
        cmos
    }

    /// An RTC on `timers`' clock whose interrupts are delivered from `timers`' callbacks.
    pub fn new_shared(timers: &dyn TimerService, irq: Arc<dyn InterruptLine>) -> Arc<std::sync::Mutex<Cmos>> {
        let clock = timers.clock();
        shared_with_timer(timers, "rtc", |timer| Cmos::new(clock, irq, timer), Cmos::timer_expired)
    }

    /// Machine reset: the RESET pin clears PIE, AIE, UIE, SQWE and the flags in register C
    /// (datasheet "RESET"). Time and NVRAM survive.
    pub fn reset(&mut self) {
        self.regs[REG_B] &= !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.regs[REG_C] = 0;
        self.index = 0;
        self.reschedule();
    }

    /// Writes the memory-size fields firmware reads (QEMU `pc_cmos_init`): base memory in KiB
    /// (0x15/0x16, always 640), memory between 1 MiB and 64 MiB in KiB (0x17/0x18 and
    /// 0x30/0x31, at most 0xffff), memory between 16 MiB and 4 GiB in 64 KiB units (0x34/0x35),
    /// and memory above 4 GiB in 64 KiB units (0x5b-0x5d).
    pub fn set_memory_size(&mut self, ram_below_4g: u64, ram_above_4g: u64) {
        self.set_u16(NV_BASE_MEM_LO, 640);
        let ext_kib = (ram_below_4g.saturating_sub(MIB) / KIB).min(0xffff) as u16;
        self.set_u16(NV_EXT_MEM_LO, ext_kib);
        self.set_u16(NV_EXT_MEM2_LO, ext_kib);
        let above_16m = (ram_below_4g.saturating_sub(16 * MIB) / (64 * KIB)).min(0xffff) as u16;
        self.set_u16(NV_MEM_ABOVE_16M_LO, above_16m);
        let above_4g = (ram_above_4g / (64 * KIB)).min(0xff_ffff) as u32;
        self.regs[NV_MEM_ABOVE_4G..NV_MEM_ABOVE_4G + 3].copy_from_slice(&above_4g.to_le_bytes()[..3]);
    }

    /// Sets the boot device order SeaBIOS reads from 0x3d (first device in bits 3:0, second in
    /// 7:4) and 0x38 (third in bits 7:4; bit 0 clear = check the floppy boot signature), from up
    /// to three of `a` (floppy), `c` (disk), `d` (CD-ROM), `n` (network), as QEMU's `-boot order=`.
    pub fn set_boot_order(&mut self, order: &str) -> Result<(), BootOrderError> {
        if order.len() > 3 {
            return Err(BootOrderError(format!("{order:?}: at most 3 devices")));
        }
        let mut codes = [0u8; 3];
        for (slot, c) in codes.iter_mut().zip(order.chars()) {
            *slot = match c {
                'a' => 0x01,
                'c' => 0x02,
                'd' => 0x03,
                'n' => 0x04,
                _ => return Err(BootOrderError(format!("{order:?}: unknown device {c:?}"))),
            };
        }
        self.regs[NV_BOOT_FLAGS_1] = (codes[1] << 4) | codes[0];
        self.regs[NV_BOOT_FLAGS_2] = codes[2] << 4;
        Ok(())
    }

    /// 0x5f: number of CPUs minus one (a QEMU/SeaBIOS convention).
    pub fn set_cpu_count(&mut self, cpus: u32) {
        self.regs[NV_CPU_COUNT] = cpus.saturating_sub(1).min(0xff) as u8;
    }

    /// The timer's callback: delivers due update, alarm and periodic interrupts and arms the
    /// timer for the next one. A call with nothing due (a callback that raced with a re-arm, or a
    /// host wall clock that has not reached the second yet) only re-arms.
    fn timer_expired(&mut self) {
        // The timer is one-shot: whatever it was armed for has been consumed.
        self.armed = None;
        if self.update_flags() {
            self.irq.pulse();
        }
        self.reschedule();
    }

    /// Arms the timer for the earliest event an enabled interrupt waits for, or disarms it.
    fn reschedule(&mut self) {
        let next = self.next_event_ns();
        if next == self.armed {
            return;
        }
        match next {
            Some(deadline) => self.timer.arm_at(deadline),
            None => self.timer.cancel(),
        }
        self.armed = next;
    }

    /// When, on the clock's monotonic time, the next interrupt could assert. Assumes the flags
    /// are up to date (`update_flags` ran since the clock last moved).
    fn next_event_ns(&self) -> Option<u64> {
        // IRQF stays set until register C is read; until then no edge can happen.
        if self.regs[REG_C] & C_IRQF != 0 {
            return None;
        }
        let b = self.regs[REG_B];
        let mono_now = self.clock.monotonic_ns();
        let mut next: Option<u64> = None;
        let mut earliest = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if b & B_PIE != 0 {
            if let Some(p) = self.period_ns() {
                earliest(self.periodic_index.saturating_add(1).saturating_mul(p));
            }
        }
        if b & B_SET == 0 && b & (B_UIE | B_AIE) != 0 {
            // Guest seconds tick with the host's wall clock (the offset is whole seconds).
            let into_second = self.clock.unix_time_ns().rem_euclid(1_000_000_000) as u64;
            let next_second = mono_now.saturating_add(1_000_000_000 - into_second);
            if b & B_UIE != 0 {
                earliest(next_second);
            }
            if b & B_AIE != 0 {
                let now = self.guest_now();
                if let Some(t) = self.next_alarm_after(now) {
                    let later = u64::try_from(t - now - 1).unwrap_or(0);
                    earliest(next_second.saturating_add(later.saturating_mul(1_000_000_000)));
                }
            }
        }
        next
    }

    /// The first guest second after `after` whose time matches the alarm registers, if any does
    /// (an alarm byte that no time encodes to, e.g. 0x61 seconds, never matches).
    fn next_alarm_after(&self, after: i64) -> Option<i64> {
        let dont_care = |a: u8| a & ALARM_DONT_CARE == ALARM_DONT_CARE;
        let (sa, ma, ha) = (self.regs[REG_SECONDS_ALARM], self.regs[REG_MINUTES_ALARM], self.regs[REG_HOURS_ALARM]);
        let possible = (dont_care(sa) || (0..60).any(|v| self.encode(v) == sa))
            && (dont_care(ma) || (0..60).any(|v| self.encode(v) == ma))
            && (dont_care(ha) || (0..24).any(|v| self.encode_hour(v) == ha));
        if !possible {
            return None;
        }
        // Every hour/minute combination recurs within a day; walk minute by minute, and second
        // by second only within minutes whose hour and minute match (at most 1441 + 60 steps).
        let end = after.saturating_add(86_400);
        let mut t = after.saturating_add(1);
        while t <= end {
            let d = DateTime::from_unix(t);
            let hour_minute =
                (dont_care(ha) || ha == self.encode_hour(d.hour)) && (dont_care(ma) || ma == self.encode(d.minute));
            if !hour_minute {
                t = t.saturating_add(i64::from(60 - d.second));
            } else if dont_care(sa) || sa == self.encode(d.second) {
                return Some(t);
            } else {
                t = t.saturating_add(1);
            }
        }
        None
    }

    fn set_u16(&mut self, lo: usize, value: u16) {
        self.regs[lo..lo + 2].copy_from_slice(&value.to_le_bytes());
    }

    fn guest_now(&self) -> i64 {
        self.clock.unix_time_s().saturating_add(self.offset_s)
    }

    fn binary(&self) -> bool {
        self.regs[REG_B] & B_BINARY != 0
    }

    fn encode(&self, v: u32) -> u8 {
        let v = (v % 100) as u8;
        if self.binary() {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn decode(&self, r: u8) -> u32 {
        if self.binary() {
            u32::from(r)
        } else {
            u32::from(r >> 4) * 10 + u32::from(r & 0x0f)
        }
    }

    fn encode_hour(&self, h: u32) -> u8 {
        if self.regs[REG_B] & B_24H != 0 {
            self.encode(h)
        } else {
            // 12-hour mode: 1-12, bit 7 = PM.
            let h12 = match h % 12 {
                0 => 12,
                r => r,
            };
            self.encode(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    fn decode_hour(&self, r: u8) -> u32 {
        if self.regs[REG_B] & B_24H != 0 {
            self.decode(r)
        } else {
            self.decode(r & 0x7f) % 12 + if r & 0x80 != 0 { 12 } else { 0 }
        }
    }

    /// Unless SET freezes them, loads the time registers with the current guest time.
    fn refresh_time(&mut self) {
        if self.regs[REG_B] & B_SET != 0 {
            return;
        }
        let t = DateTime::from_unix(self.guest_now());
        self.regs[REG_SECONDS] = self.encode(t.second);
        self.regs[REG_MINUTES] = self.encode(t.minute);
        self.regs[REG_HOURS] = self.encode_hour(t.hour);
        self.regs[REG_DAY_OF_WEEK] = self.encode(t.weekday + 1);
        self.regs[REG_DAY_OF_MONTH] = self.encode(t.day);
        self.regs[REG_MONTH] = self.encode(t.month);
        self.regs[REG_YEAR] = self.encode(t.year.rem_euclid(100) as u32);
        self.regs[REG_CENTURY] = self.encode(t.year.div_euclid(100).rem_euclid(100) as u32);
    }

    /// Makes the time in the registers the guest's time: moves the offset to the host clock.
    /// Out-of-range fields are clamped (the datasheet leaves them undefined).
    fn commit_time(&mut self) {
        let century = i64::from(self.decode(self.regs[REG_CENTURY]).min(99));
        let t = DateTime {
            year: century * 100 + i64::from(self.decode(self.regs[REG_YEAR]).min(99)),
            month: self.decode(self.regs[REG_MONTH]).clamp(1, 12),
            day: self.decode(self.regs[REG_DAY_OF_MONTH]).clamp(1, 31),
            hour: self.decode_hour(self.regs[REG_HOURS]).min(23),
            minute: self.decode(self.regs[REG_MINUTES]).min(59),
            second: self.decode(self.regs[REG_SECONDS]).min(59),
            weekday: 0,
        };
        let guest = t.to_unix();
        self.offset_s = guest.saturating_sub(self.clock.unix_time_s());
        // Setting the clock is not an update cycle: no update/alarm flags for the jump.
        self.last_second = guest;
    }

    fn period_ns(&self) -> Option<u64> {
        // Datasheet Table 5 (32.768 kHz time base): RS 1 and 2 give 256 and 128 Hz, RS 3-15 give
        // 32768 >> (RS - 1) Hz; in time-base ticks that is 2^(RS+6) and 2^(RS-1).
        let rs = u32::from(self.regs[REG_A] & A_RATE_MASK);
        let ticks: u64 = match rs {
            0 => return None,
            1 | 2 => 1 << (rs + 6),
            _ => 1 << (rs - 1),
        };
        Some(ticks * 1_000_000_000 / 32_768)
    }

    fn restart_periodic(&mut self) {
        if let Some(p) = self.period_ns() {
            self.periodic_index = self.clock.monotonic_ns() / p;
        }
    }

    fn alarm_matches(&self, t: i64) -> bool {
        let d = DateTime::from_unix(t);
        let field = |alarm: u8, now: u8| alarm & ALARM_DONT_CARE == ALARM_DONT_CARE || alarm == now;
        field(self.regs[REG_SECONDS_ALARM], self.encode(d.second))
            && field(self.regs[REG_MINUTES_ALARM], self.encode(d.minute))
            && field(self.regs[REG_HOURS_ALARM], self.encode_hour(d.hour))
    }

    /// Sets the register C flags for whatever happened since the last call; returns whether IRQF
    /// went from 0 to 1 (the moment the IRQ output asserts).
    fn update_flags(&mut self) -> bool {
        if let Some(p) = self.period_ns() {
            let index = self.clock.monotonic_ns() / p;
            if index > self.periodic_index {
                self.periodic_index = index;
                self.regs[REG_C] |= C_PF;
            }
        }
        // Updates (and so update-ended and alarm events) stop while SET is 1.
        if self.regs[REG_B] & B_SET == 0 {
            let now = self.guest_now();
            if now > self.last_second {
                // The alarm compares hours/minutes/seconds, so one day covers every match.
                let first = self.last_second.saturating_add(1).max(now.saturating_sub(86_399));
                if (first..=now).any(|t| self.alarm_matches(t)) {
                    self.regs[REG_C] |= C_AF;
                }
                self.regs[REG_C] |= C_UF;
            }
            self.last_second = now;
        }
        let enabled = self.regs[REG_C] & self.regs[REG_B] & (C_PF | C_AF | C_UF);
        if enabled != 0 && self.regs[REG_C] & C_IRQF == 0 {
            self.regs[REG_C] |= C_IRQF;
            return true;
        }
        false
    }

    fn read_data(&mut self) -> u8 {
        let index = usize::from(self.index);
        match index {
            REG_A => self.regs[REG_A] & !A_UIP,
            REG_C => {
                self.update_flags();
                let flags = std::mem::take(&mut self.regs[REG_C]);
                // With IRQF clear the next interrupt can assert again: wake for it.
                self.reschedule();
                flags
            }
            REG_D => D_VRT,
            _ if TIME_REGS.contains(&index) => {
                self.refresh_time();
                self.regs[index]
            }
            _ => self.regs[index],
        }
    }

    fn write_data(&mut self, value: u8) {
        let index = usize::from(self.index);
        match index {
            REG_A => {
                let old_rate = self.regs[REG_A] & A_RATE_MASK;
                // Account for periods at the old rate before changing it.
                if self.update_flags() {
                    self.irq.pulse();
                }
                self.regs[REG_A] = value & !A_UIP;
                if value & A_RATE_MASK != old_rate {
                    self.restart_periodic();
                }
            }
            REG_B => {
                if self.update_flags() {
                    self.irq.pulse();
                }
                let old = self.regs[REG_B];
                let mut value = value;
                if value & B_SET != 0 {
                    // Freeze the registers at the current time; SET also clears UIE.
                    self.refresh_time();
                    value &= !B_UIE;
                }
                self.regs[REG_B] = value;
                if old & B_SET != 0 && value & B_SET == 0 {
                    self.commit_time();
                }
                // Enabling an interrupt whose flag is already set asserts IRQ now.
                if self.update_flags() {
                    self.irq.pulse();
                }
            }
            REG_C | REG_D => {} // read-only
            _ if TIME_REGS.contains(&index) => {
                let frozen = self.regs[REG_B] & B_SET != 0;
                self.refresh_time();
                self.regs[index] = value;
                if !frozen {
                    self.commit_time();
                }
            }
            _ => self.regs[index] = value,
        }
    }
}

impl BusDevice for Cmos {
    fn read(&mut self, addr: u64, data: &mut [u8]) {
        read_bytes(addr, data, |a| match a {
            // The index register is write-only.
            INDEX_PORT => 0xff,
            DATA_PORT => self.read_data(),
            _ => 0xff,
        });
    }

    fn write(&mut self, addr: u64, data: &[u8]) {
        write_bytes(addr, data, |a, v| match a {
            // Bit 7 is the NMI mask on PC/ATs; NMIs are not ours to gate.
            INDEX_PORT => self.index = v & 0x7f,
            DATA_PORT => {
                self.write_data(v);
                // Rate, enables, alarm and time registers all move the next event.
                self.reschedule();
            }
            _ => {}
        });
    }
}

/// Guest time offsets and clock readings beyond this many seconds (about 31 700 years) from the
/// host's are refused on restore: no real RTC state looks like that, and it keeps date arithmetic
/// far from overflow.
const MAX_RESTORED_SECONDS: i64 = 1_000_000_000_000;

impl crate::snapshot::Snapshot for Cmos {
    const ID: &'static str = "mc146818rtc";
    const VERSION: u16 = 1;

    /// All 128 bytes, the index register, the guest-time offset from the host's UTC clock and
    /// the last second the update/alarm logic accounted for (QEMU `vmstate_rtc`: cmos_data,
    /// cmos_index, base_rtc/offset, and the alarm/update timers it re-derives). Both times are
    /// wall-clock based, so they carry over between hosts; the periodic interrupt phase is
    /// re-derived from the restoring host's clock.
    fn save(&self, w: &mut crate::snapshot::StateWriter) {
        w.bytes(&self.regs);
        w.u8(self.index);
        w.i64(self.offset_s);
        w.i64(self.last_second);
    }

    fn restore(&mut self, r: &mut crate::snapshot::StateReader<'_>) -> Result<(), crate::snapshot::StateError> {
        let regs: [u8; CMOS_SIZE] = r.array("cmos")?;
        if regs[REG_A] & A_UIP != 0 {
            return Err(r.invalid("cmos[0x0a]", "UIP is read-only and never stored"));
        }
        if regs[REG_C] & !(C_IRQF | C_PF | C_AF | C_UF) != 0 {
            return Err(r.invalid("cmos[0x0c]", format!("{:#04x} has bits register C never holds", regs[REG_C])));
        }
        let index = r.u8_where("index", |i| usize::from(i) < CMOS_SIZE, "a CMOS index (0-127)")?;
        let offset_s = r.i64("offset_s")?;
        if offset_s.unsigned_abs() > MAX_RESTORED_SECONDS as u64 {
            return Err(r.invalid("offset_s", format!("{offset_s} s from the host clock is not a date")));
        }
        let last_second = r.i64("last_second")?;
        if last_second.unsigned_abs() > 2 * MAX_RESTORED_SECONDS as u64 {
            return Err(r.invalid("last_second", format!("{last_second} is not a date")));
        }
        r.finish()?;
        self.regs = regs;
        self.index = index;
        self.offset_s = offset_s;
        self.last_second = last_second;
        self.restart_periodic();
        // Whatever fell due while the machine was saved shows up at the next event, computed
        // from the restoring host's clock.
        self.armed = None;
        self.reschedule();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::interrupt::RecordingLine;
    use crate::timer::ManualTimers;
    use std::sync::Mutex;

    /// 2023-11-14 22:13:20 UTC, a Tuesday.
    const T0: i64 = 1_700_000_000;
    const SECOND: u64 = 1_000_000_000;

    /// The RTC as the machine has it: shared, with its timer on a manual service, so that time
    /// moves (and the RTC's own timer fires) only when a test says.
    struct Rtc {
        cmos: Arc<Mutex<Cmos>>,
        timers: Arc<ManualTimers>,
    }

    impl Rtc {
        /// Moves time, running the RTC's timer whenever it falls due on the way.
        fn advance_ns(&self, ns: u64) {
            self.timers.advance_ns(ns);
        }
        fn write(&self, addr: u64, data: &[u8]) {
            self.cmos.lock().unwrap().write(addr, data);
        }
        fn read(&self, addr: u64, data: &mut [u8]) {
            self.cmos.lock().unwrap().read(addr, data);
        }
    }

    fn rig(t: i64) -> (Rtc, Arc<ManualTimers>, Arc<RecordingLine>) {
        let timers = ManualTimers::new(Arc::new(ManualClock::new(t)));
        let line = Arc::new(RecordingLine::default());
        let cmos = Cmos::new_shared(&*timers, line.clone());
        (Rtc { cmos, timers: timers.clone() }, timers, line)
    }

    fn rd(c: &mut Rtc, index: u8) -> u8 {
        c.write(INDEX_PORT, &[index | 0x80]);
        let mut d = [0u8];
        c.read(DATA_PORT, &mut d);
        d[0]
    }

    fn wr(c: &mut Rtc, index: u8, value: u8) {
        c.write(INDEX_PORT, &[index]);
        c.write(DATA_PORT, &[value]);
    }

    fn time_regs(c: &mut Rtc) -> [u8; 8] {
        [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(|i| rd(c, i))
    }

    #[test]
    fn date_in_bcd_and_binary_and_12_hour_modes() {
        let (mut c, _, _) = rig(T0);
        assert_eq!(rd(&mut c, 0x0d), 0x80, "valid RAM and time");
        assert_eq!(rd(&mut c, 0x0b) & 0x06, 0x02, "BCD, 24-hour at power-on");
        assert_eq!(time_regs(&mut c), [0x20, 0x13, 0x22, 0x03, 0x14, 0x11, 0x23, 0x20]);
        wr(&mut c, 0x0b, 0x06);
        assert_eq!(time_regs(&mut c), [20, 13, 22, 3, 14, 11, 23, 20]);
        wr(&mut c, 0x0b, 0x04); // binary, 12-hour: 10 PM
        assert_eq!(rd(&mut c, 0x04), 0x80 | 10);
        wr(&mut c, 0x0b, 0x00); // BCD, 12-hour
        assert_eq!(rd(&mut c, 0x04), 0x80 | 0x10);
    }

    #[test]
    fn calendar_edges() {
        // 2000-02-29 00:00:00 UTC, a Tuesday; and the epoch itself (Thursday).
        let (mut c, _, _) = rig(951_782_400);
        assert_eq!(time_regs(&mut c), [0x00, 0x00, 0x00, 0x03, 0x29, 0x02, 0x00, 0x20]);
        c.advance_ns(86_400 * SECOND);
        assert_eq!(time_regs(&mut c)[3..7], [0x04, 0x01, 0x03, 0x00]);
        let (mut c, _, _) = rig(0);
        assert_eq!(time_regs(&mut c), [0, 0, 0, 0x05, 0x01, 0x01, 0x70, 0x19]);
        for t in [-1_000_000_000_000i64, -1, 1, 4_102_444_800, 253_402_300_799] {
            assert_eq!(DateTime::from_unix(t).to_unix(), t);
        }
    }

    #[test]
    fn guest_sets_the_clock_with_set_and_it_keeps_running() {
        let (mut c, _, _) = rig(T0);
        wr(&mut c, 0x0b, 0x82); // SET, BCD, 24h
        let frozen = time_regs(&mut c);
        c.advance_ns(5 * SECOND);
        assert_eq!(time_regs(&mut c), frozen, "SET freezes the registers");
        // 1999-12-31 23:59:58
        for (i, v) in [(0x00, 0x58), (0x02, 0x59), (0x04, 0x23), (0x07, 0x31), (0x08, 0x12), (0x09, 0x99), (0x32, 0x19)]
        {
            wr(&mut c, i, v);
        }
        wr(&mut c, 0x0b, 0x02);
        assert_eq!(time_regs(&mut c), [0x58, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19]);
        c.advance_ns(3 * SECOND);
        assert_eq!(time_regs(&mut c), [0x01, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]);
        // A single field written without SET moves the clock too.
        wr(&mut c, 0x09, 0x05);
        assert_eq!(rd(&mut c, 0x09), 0x05);
        assert_eq!(rd(&mut c, 0x08), 0x01);
    }

    #[test]
    fn update_ended_interrupt_once_per_second() {
        let (mut c, timers, line) = rig(T0);
        rd(&mut c, 0x0c);
        assert_eq!(timers.next_deadline(), None, "no interrupt enabled: no timer");
        wr(&mut c, 0x0b, 0x12); // UIE
        assert_eq!(line.rising_edges(), 0);
        c.advance_ns(SECOND - 1);
        assert_eq!(line.rising_edges(), 0);
        c.advance_ns(1);
        assert_eq!(line.rising_edges(), 1, "at the second");
        c.advance_ns(5 * SECOND);
        assert_eq!(line.rising_edges(), 1, "IRQF stays set until C is read");
        assert_eq!(timers.expirations(), 1, "and the RTC does not wake the host meanwhile");
        assert_eq!(rd(&mut c, 0x0c) & 0x90, 0x90);
        assert_eq!(rd(&mut c, 0x0c) & 0x90, 0, "reading C clears it");
        c.advance_ns(SECOND);
        assert_eq!(line.rising_edges(), 2);
        // A guest that acknowledges every interrupt gets one per second, and costs one wake-up.
        rd(&mut c, 0x0c);
        let wakeups = timers.expirations();
        for _ in 0..10 {
            c.advance_ns(SECOND);
            rd(&mut c, 0x0c);
        }
        assert_eq!(line.rising_edges(), 12);
        assert_eq!(timers.expirations() - wakeups, 10);
        wr(&mut c, 0x0b, 0x02);
        assert_eq!(timers.next_deadline(), None, "UIE off: the timer is cancelled");
    }

    #[test]
    fn update_interrupt_follows_the_wall_clock_second_not_the_enable_time() {
        let (mut c, timers, line) = rig(T0);
        c.advance_ns(SECOND / 4);
        rd(&mut c, 0x0c);
        wr(&mut c, 0x0b, 0x12);
        assert_eq!(timers.next_deadline(), Some(SECOND), "the next whole second of the RTC");
        c.advance_ns(3 * SECOND / 4);
        assert_eq!(line.rising_edges(), 1);
        assert_eq!(rd(&mut c, 0x00), 0x21, "and the seconds register moved with it");
    }

    #[test]
    fn periodic_interrupt_at_the_programmed_rate() {
        let (mut c, timers, line) = rig(T0);
        wr(&mut c, 0x0a, 0x2f); // 2 Hz
        rd(&mut c, 0x0c);
        wr(&mut c, 0x0b, 0x42); // PIE
        assert_eq!(timers.next_deadline(), Some(500_000_000));
        c.advance_ns(400_000_000);
        assert_eq!(line.rising_edges(), 0);
        c.advance_ns(100_000_000);
        assert_eq!(line.rising_edges(), 1);
        assert_eq!(rd(&mut c, 0x0c) & 0xc0, 0xc0);
        c.advance_ns(500_000_000);
        assert_eq!(line.rising_edges(), 2);
        rd(&mut c, 0x0c);
        // 1024 Hz: one interrupt per period for a guest that acknowledges each.
        wr(&mut c, 0x0a, 0x26);
        let before = line.rising_edges();
        for _ in 0..1024 {
            c.advance_ns(1_000_000_000 / 1024 + 1);
            rd(&mut c, 0x0c);
        }
        let n = line.rising_edges() - before;
        assert!((1023..=1024).contains(&n), "{n} interrupts in a second at 1024 Hz");
        // Without PIE the flag still sets (register C is derived from the clock) but there is no
        // interrupt and no timer.
        wr(&mut c, 0x0b, 0x02);
        assert_eq!(timers.next_deadline(), None);
        let before = line.rising_edges();
        c.advance_ns(500_000_000);
        assert_eq!(line.rising_edges(), before);
        assert_eq!(rd(&mut c, 0x0c) & 0xc0, 0x40);
        // Rate 0 stops the periodic interrupt even with PIE.
        wr(&mut c, 0x0a, 0x20);
        wr(&mut c, 0x0b, 0x42);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn alarm_interrupt_fires_at_the_alarm_time() {
        let (mut c, timers, line) = rig(T0); // 22:13:20
        wr(&mut c, 0x01, 0x22);
        wr(&mut c, 0x03, 0xc0); // any minute
        wr(&mut c, 0x05, 0x22);
        rd(&mut c, 0x0c);
        wr(&mut c, 0x0b, 0x22); // AIE
        assert_eq!(timers.next_deadline(), Some(2 * SECOND), "armed for 22:13:22, not every second");
        c.advance_ns(SECOND);
        assert_eq!(line.rising_edges(), 0);
        c.advance_ns(SECOND);
        assert_eq!(line.rising_edges(), 1);
        assert_eq!(rd(&mut c, 0x0c) & 0xa0, 0xa0);
        // The next match is a minute later; two alarms cost two wake-ups.
        c.advance_ns(120 * SECOND);
        assert_eq!(line.rising_edges(), 2);
        assert_eq!(timers.expirations(), 2);
        // An alarm that passes while IRQF is still set shows in register C when it is read.
        c.advance_ns(60 * SECOND);
        assert_eq!(rd(&mut c, 0x0c) & 0xa0, 0xa0);
        // An alarm no time matches (0x61 is no BCD second) never arms the timer.
        wr(&mut c, 0x01, 0x61);
        assert_eq!(timers.next_deadline(), None);
        // Hours alarm in 12-hour mode: 10 PM is 0x90 in BCD.
        wr(&mut c, 0x0b, 0x20); // AIE, BCD, 12-hour
        wr(&mut c, 0x01, 0xc0);
        wr(&mut c, 0x03, 0xc0);
        wr(&mut c, 0x05, 0x90);
        rd(&mut c, 0x0c);
        assert!(timers.next_deadline().is_some());
        let before = line.rising_edges();
        c.advance_ns(SECOND);
        assert_eq!(line.rising_edges(), before + 1, "every second of 10 PM matches");
    }

    #[test]
    fn an_idle_rtc_never_wakes_the_host() {
        let (mut c, timers, line) = rig(T0);
        // What a Linux guest does at boot: read the time, program nothing.
        time_regs(&mut c);
        rd(&mut c, 0x0c);
        c.advance_ns(3600 * SECOND);
        assert_eq!(timers.expirations(), 0);
        assert_eq!(line.rising_edges(), 0);
        assert_eq!(rd(&mut c, 0x0c) & 0x10, 0x10, "the update flag is still derived from the clock");
    }

    #[test]
    fn reset_and_restore_rearm_the_timer() {
        use crate::snapshot::Snapshot;
        let (mut c, timers, _) = rig(T0);
        rd(&mut c, 0x0c);
        wr(&mut c, 0x0b, 0x12);
        assert!(timers.next_deadline().is_some());
        let mut saved = crate::snapshot::StateWriter::new();
        c.cmos.lock().unwrap().save(&mut saved);
        c.cmos.lock().unwrap().reset();
        assert_eq!(timers.next_deadline(), None, "RESET clears UIE");
        let (b, b_timers, b_line) = rig(T0);
        let bytes = saved.into_bytes();
        b.cmos
            .lock()
            .unwrap()
            .restore(&mut crate::snapshot::StateReader::new(Cmos::ID, Cmos::VERSION, &bytes))
            .unwrap();
        assert!(b_timers.next_deadline().is_some(), "a restored RTC with UIE wakes for the next second");
        b.advance_ns(SECOND);
        assert_eq!(b_line.rising_edges(), 1);
    }

    #[test]
    fn memory_size_fields_seabios_reads() {
        let (mut c, _, _) = rig(T0);
        c.cmos.lock().unwrap().set_memory_size(2048 * MIB, 1024 * MIB);
        let w = |c: &mut Rtc, lo: u8| u16::from_le_bytes([rd(c, lo), rd(c, lo + 1)]);
        assert_eq!(w(&mut c, 0x15), 640);
        assert_eq!(w(&mut c, 0x17), 0xffff);
        assert_eq!(w(&mut c, 0x30), 0xffff);
        assert_eq!(w(&mut c, 0x34), ((2048 - 16) * MIB / (64 * KIB)) as u16);
        assert_eq!([rd(&mut c, 0x5b), rd(&mut c, 0x5c), rd(&mut c, 0x5d)], [0x00, 0x40, 0x00]);
        c.cmos.lock().unwrap().set_memory_size(32 * MIB, 0);
        assert_eq!(w(&mut c, 0x17), 31 * 1024);
        assert_eq!(w(&mut c, 0x30), 31 * 1024);
        assert_eq!(w(&mut c, 0x34), 256);
        assert_eq!([rd(&mut c, 0x5b), rd(&mut c, 0x5c), rd(&mut c, 0x5d)], [0, 0, 0]);
        c.cmos.lock().unwrap().set_memory_size(0, u64::MAX);
        assert_eq!(w(&mut c, 0x17), 0);
        assert_eq!([rd(&mut c, 0x5b), rd(&mut c, 0x5c), rd(&mut c, 0x5d)], [0xff, 0xff, 0xff]);
    }

    #[test]
    fn boot_order_and_cpu_count() {
        let (mut c, _, _) = rig(T0);
        c.cmos.lock().unwrap().set_boot_order("cda").unwrap();
        assert_eq!((rd(&mut c, 0x3d), rd(&mut c, 0x38)), (0x32, 0x10));
        c.cmos.lock().unwrap().set_boot_order("n").unwrap();
        assert_eq!((rd(&mut c, 0x3d), rd(&mut c, 0x38)), (0x04, 0x00));
        assert!(c.cmos.lock().unwrap().set_boot_order("cx").is_err());
        assert!(c.cmos.lock().unwrap().set_boot_order("cdan").is_err());
        assert_eq!(rd(&mut c, 0x3d), 0x04, "a refused order changes nothing");
        c.cmos.lock().unwrap().set_cpu_count(4);
        assert_eq!(rd(&mut c, 0x5f), 3);
        c.cmos.lock().unwrap().set_cpu_count(0);
        assert_eq!(rd(&mut c, 0x5f), 0);
    }

    #[test]
    fn nvram_keeps_bytes_and_any_access_is_safe() {
        let (mut c, timers, _) = rig(T0);
        for i in 0x0e..0x80u8 {
            if i != 0x32 {
                wr(&mut c, i, i ^ 0xa5);
            }
        }
        for i in 0x0e..0x80u8 {
            if i != 0x32 {
                assert_eq!(rd(&mut c, i), i ^ 0xa5);
            }
        }
        // outw 0x70: index then data in one access.
        c.write(INDEX_PORT, &[0x40, 0x77]);
        assert_eq!(rd(&mut c, 0x40), 0x77);
        wr(&mut c, 0x0d, 0x00);
        assert_eq!(rd(&mut c, 0x0d), 0x80);
        for addr in [0u64, 0x6f, 0x70, 0x71, 0x72, u64::MAX] {
            for len in 1..=4 {
                let mut d = vec![0u8; len];
                c.read(addr, &mut d);
                c.write(addr, &[0xff, 0xff, 0xff, 0xff][..len]);
            }
        }
        for i in 0..=0xffu8 {
            for v in [0x00, 0x99, 0xff] {
                wr(&mut c, i, v);
                rd(&mut c, i);
            }
        }
        // Whatever the guest programmed, time moving on is safe too.
        c.advance_ns(10 * SECOND);
        assert!(timers.expirations() < 10 * 8192 + 100);
    }
}

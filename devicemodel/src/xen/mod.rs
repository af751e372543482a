//! The Xen backend: what lets the machine of `machine.rs` run as the device model of a Xen HVM
//! guest (xen-interface.md sections 1, 4, 5, 10).
//!
//! A thin, pure-Rust layer over the Linux Xen device files, with no libxen* (a static musl binary
//! must run in a stub domain):
//! - [`privcmd`] -- `/dev/xen/privcmd` (DMOP hypercalls, resource and foreign mappings);
//! - [`dmop`] -- typed device-model operations;
//! - [`evtchn`] -- `/dev/xen/evtchn`;
//! - [`xenstore`] -- the xenstore protocol over the xenstored socket or `/dev/xen/xenbus`;
//! - [`ioreq`] -- the ioreq wire format, its validation and dispatch onto `devices::bus::IoBus`;
//! - [`ioreq_server`] -- the ioreq server (setup, range registration, event loop);
//! - [`memory`] -- guest RAM through foreign mappings, with dirty reporting for migration;
//! - [`interrupts`] -- interrupt lines, MSIs and PIRQ routing as DMOPs;
//! - [`vram`] -- video memory: populated guest RAM relocated into BAR0, dirty-tracked;
//! - [`pv_backends`] -- the PV backends libxl wrote for us that we do not serve (reported, not served).
//!
//! `crate::xen_machine` assembles the `-machine xenfv` machine on this backend and serves it.

pub mod dmop;
pub mod evtchn;
pub mod interrupts;
pub mod ioreq;
pub mod ioreq_server;
pub mod memory;
pub mod privcmd;
pub mod pv_backends;
pub mod vram;
pub mod xenstore;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use devices::bus::IoBus;
use devices::vm_control::{VmControl, VmRequest};

use dmop::{DeviceModelOps, HvmMemType, ShutdownReason};
use evtchn::Evtchn;
use ioreq_server::IoreqServer;
use memory::{ForeignMemory, PrivcmdMapper, DEFAULT_MAX_BUCKETS};
use privcmd::Privcmd;
use xenstore::Xenstore;

/// The handles of one device model process serving guest `domid`.
pub struct XenBackend {
    domid: u16,
    privcmd: Arc<Privcmd>,
    evtchn: Arc<Evtchn>,
    dm: DeviceModelOps,
    xenstore: Xenstore,
}

impl XenBackend {
    /// Opens privcmd, evtchn and xenstore. Fails with a message that says which is missing.
    pub fn new(domid: u16) -> Result<Self, String> {
        if domid == 0 || domid >= 0x7ff0 {
            return Err(format!("-xen-domid {domid}: not a guest domain"));
        }
        let privcmd = Arc::new(Privcmd::open()?);
        let evtchn = Arc::new(Evtchn::open()?);
        let xenstore = Xenstore::open()?;
        let dm = DeviceModelOps::new(privcmd.clone(), domid);
        Ok(XenBackend { domid, privcmd, evtchn, dm, xenstore })
    }

    pub fn domid(&self) -> u16 {
        self.domid
    }

    pub fn dm(&self) -> &DeviceModelOps {
        &self.dm
    }

    pub fn xenstore(&self) -> &Xenstore {
        &self.xenstore
    }

    /// Guest RAM for the devices (DMA) and for rep ioreqs.
    pub fn guest_memory(&self) -> Arc<ForeignMemory> {
        let mapper = PrivcmdMapper::new(self.privcmd.clone(), self.domid);
        Arc::new(ForeignMemory::new(Box::new(mapper), Box::new(self.dm.clone()), DEFAULT_MAX_BUCKETS))
    }

    /// Video memory for display devices (populated past `ram_size` = `-m`; with `incoming`, found
    /// where the restored guest has it). Must be created before [`XenBackend::restrict`].
    pub fn vram_service(&self, ram_size: u64, incoming: bool) -> Result<Arc<vram::XenVram>, String> {
        let host = vram::PrivcmdVramHost::new(self.privcmd.clone(), self.domid)?;
        Ok(Arc::new(vram::XenVram::new(self.dm.clone(), Arc::new(host), ram_size, incoming)))
    }

    /// Every interrupt of the guest, as DMOPs.
    pub fn interrupts(&self) -> Arc<interrupts::XenInterrupts> {
        interrupts::XenInterrupts::new(self.dm.clone())
    }

    /// Power requests of the devices become `remote_shutdown`; Xen and libxl do the rest.
    pub fn vm_control(&self) -> Arc<dyn VmControl> {
        Arc::new(XenVmControl { dm: self.dm.clone() })
    }

    /// Tells libxl the device model is up: `device-model/<domid>/state = running`, relative to our
    /// own domain's home (dom0 or the stub domain).
    pub fn report_running(&self) -> Result<(), String> {
        let path = format!("device-model/{}/state", self.domid);
        self.xenstore.write(&path, b"running").map_err(|e| format!("writing {path}: {e}"))
    }

    /// `-xen-domid-restrict`: after this only `domid` can be targeted. Privileged setup first.
    pub fn restrict(&self) -> Result<(), String> {
        self.privcmd.restrict(self.domid).map_err(|e| format!("IOCTL_PRIVCMD_RESTRICT: {e}"))?;
        self.evtchn.restrict(self.domid).map_err(|e| format!("IOCTL_EVTCHN_RESTRICT_DOMID: {e}"))
    }

    /// Creates the ioreq server, claims everything `bus` decodes, reports readiness and serves
    /// ioreqs until `stop` is set. The server is destroyed on return.
    pub fn run(&self, bus: Arc<IoBus>, mem: Arc<ForeignMemory>, stop: &AtomicBool) -> Result<(), String> {
        self.run_with(bus, mem, stop, || Ok(()))
    }

    /// Like [`XenBackend::run`], calling `after_setup` once the server is registered and
    /// `running` reported, before serving the first request (privilege dropping goes there).
    pub fn run_with(
        &self,
        bus: Arc<IoBus>,
        mem: Arc<ForeignMemory>,
        stop: &AtomicBool,
        after_setup: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let server = IoreqServer::create(self.dm.clone(), &self.privcmd, self.evtchn.clone())?;
        ioreq_server::register_ranges(&self.dm, server.id(), &bus, server.counters().clone())?;
        self.report_running()?;
        after_setup()?;
        server.run(&self.evtchn, &bus, &mem, stop)
    }
}

/// Makes the option-ROM area 0xc0000-0xfffff (pfns 0xc0-0xff) read-only or writable in the
/// guest's p2m, for the xen-platform device's ROM lock flag. Returns whether it took effect.
pub fn set_rom_lock(dm: &DeviceModelOps, locked: bool) -> bool {
    let ty = if locked { HvmMemType::RamRo } else { HvmMemType::RamRw };
    match dm.set_mem_type(ty, 0xc0, 0x40) {
        Ok(()) => true,
        Err(e) => {
            log::warn!("xen-platform ROM lock {locked}: {e}");
            false
        }
    }
}

struct XenVmControl {
    dm: DeviceModelOps,
}

impl VmControl for XenVmControl {
    fn request(&self, request: VmRequest) {
        let reason = match request {
            VmRequest::PowerOff => ShutdownReason::Poweroff,
            VmRequest::Reset => ShutdownReason::Reboot,
            // isa-debug-exit has no Xen meaning; treat it as power-off so the guest stops.
            VmRequest::DebugExit(_) => ShutdownReason::Poweroff,
        };
        if let Err(e) = self.dm.remote_shutdown(reason) {
            log::error!("{request:?}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::dmop::testing::RecordingTransport;
    use crate::xen::dmop::XEN_DMOP_REMOTE_SHUTDOWN;

    #[test]
    fn power_requests_become_remote_shutdown() {
        let t = RecordingTransport::new();
        let control = XenVmControl { dm: DeviceModelOps::new(t.clone(), 8) };
        control.request(VmRequest::PowerOff);
        control.request(VmRequest::Reset);
        let seen: Vec<(u16, u32, u64)> = t.take().iter().map(|c| (c.domid, c.op(), c.field(0, 4))).collect();
        assert_eq!(seen, vec![(8, XEN_DMOP_REMOTE_SHUTDOWN, 0), (8, XEN_DMOP_REMOTE_SHUTDOWN, 1)]);
    }

    #[test]
    fn opening_outside_xen_fails_with_a_clear_message() {
        if std::path::Path::new(privcmd::PRIVCMD_PATH).exists() {
            return;
        }
        let e = XenBackend::new(5).err().unwrap();
        assert!(e.contains("/dev/xen/privcmd") && e.contains("xenfs"), "{e}");
        assert!(XenBackend::new(0).err().unwrap().contains("not a guest domain"));
    }
}

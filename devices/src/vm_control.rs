//! Requests a device makes of the whole machine (reset, power-off, debug exit). The backend decides
//! what they mean: KVM mode stops the vCPUs and exits or reboots as the command line says; Xen mode
//! calls `XEN_DMOP_remote_shutdown`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmRequest {
    /// ACPI S5 (PM1a_CNT SLP_EN with the S5 sleep type).
    PowerOff,
    /// A platform reset (0xcf9, port 0x92 bit 0, i8042 pulse of the reset line, triple fault).
    Reset,
    /// The guest wrote `code` to the debug-exit port: exit with status `(code << 1) | 1`, as QEMU's
    /// isa-debug-exit does.
    DebugExit(u32),
}

pub trait VmControl: Send + Sync {
    fn request(&self, request: VmRequest);
}

/// Records requests; for unit tests.
#[derive(Debug, Default)]
pub struct RecordingVmControl {
    requests: std::sync::Mutex<Vec<VmRequest>>,
}

impl RecordingVmControl {
    pub fn take(&self) -> Vec<VmRequest> {
        std::mem::take(&mut self.requests.lock().unwrap())
    }
}

impl VmControl for RecordingVmControl {
    fn request(&self, request: VmRequest) {
        self.requests.lock().unwrap().push(request);
    }
}

//! Display devices (VGA, Cirrus, later QXL) and what the host side's consoles (VNC, `screendump`)
//! read from them.
//!
//! A display device renders what it scans out into a host [`Framebuffer`] when a console asks
//! ([`Display::refresh`], from the console's refresh timer), marking the tiles that changed. Its
//! video memory is [`Vram`]: host memory that the guest may also reach directly (a KVM memory
//! slot at BAR0, relocated pages on Xen), obtained from and mapped by the backend's
//! [`VramService`].

pub mod cirrus;
pub mod framebuffer;
pub mod stdvga;
pub mod vga;
pub mod vram;

pub use framebuffer::{DirtyTiles, Framebuffer, Rect, TILE};
pub use vram::{HostVram, Vram, VramError, VramService};

/// A device whose picture a console shows.
pub trait Display: Send {
    /// Brings `fb` up to date with what the device scans out now: resizes it on a mode change
    /// (which marks everything dirty) and marks the tiles whose pixels changed since the last
    /// call. Cheap when nothing changed (idle guests must cost near zero).
    fn refresh(&mut self, fb: &mut Framebuffer);

    /// Forget what was drawn: the next [`Display::refresh`] redraws everything (after a restore,
    /// or when a console attaches).
    fn invalidate(&mut self);

    /// A short name for logs and QMP (`VGA`, `cirrus-vga`).
    fn name(&self) -> &str;
}

/// A display as the machine shares it with consoles.
pub type SharedDisplay = std::sync::Arc<std::sync::Mutex<dyn Display>>;

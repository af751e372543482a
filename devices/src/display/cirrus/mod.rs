//! The Cirrus Logic CLGD 5446 (`-device cirrus-vga`, `-vga cirrus`, xl's default card).

pub mod blit;
pub mod spec;

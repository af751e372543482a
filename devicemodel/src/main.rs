//! `devicemodel`: a memory-safe device model for Xen HVM guests that also runs guests on KVM.

mod cli;
mod guest_ram;
mod kvm;
mod logging;
mod machine;
mod signals;
mod xen;

use std::process::ExitCode;

use cli::Command;
use machine::StopReason;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = match cli::parse(args) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("devicemodel {} (QEMU-compatible command line, emulating QEMU 8.2.0)", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(cfg)) => cfg,
        Err(e) => {
            eprintln!("devicemodel: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = logging::init(&cfg.log) {
        eprintln!("devicemodel: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = signals::install() {
        eprintln!("devicemodel: {e}");
        return ExitCode::from(1);
    }
    loop {
        let reason = match machine::run_on_kvm(&cfg) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("devicemodel: {e}");
                return ExitCode::from(1);
            }
        };
        log::info!("guest stopped: {reason:?}");
        match reason {
            StopReason::PowerOff if cfg.no_shutdown => {
                log::info!("guest powered off; -no-shutdown keeps the device model running until it is signalled");
                while !signals::termination_requested() {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                return ExitCode::SUCCESS;
            }
            StopReason::PowerOff | StopReason::Signal => return ExitCode::SUCCESS,
            StopReason::Reset if cfg.no_reboot => return ExitCode::SUCCESS,
            StopReason::Reset => {
                log::info!("guest reset: rebooting");
                continue;
            }
            // isa-debug-exit semantics: the guest chooses an odd exit status.
            StopReason::DebugExit(code) => return ExitCode::from((((code << 1) | 1) & 0xff) as u8),
            StopReason::Error(e) => {
                eprintln!("devicemodel: guest stopped: {e}");
                return ExitCode::from(1);
            }
        }
    }
}

//! `devicemodel`: a memory-safe device model for Xen HVM guests that also runs guests on KVM.

use std::process::ExitCode;

use devicemodel::cli::{self, Command};
use devicemodel::{logging, session, signals};

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
    let session = match session::Session::start(*cfg) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("devicemodel: {e}");
            return ExitCode::from(1);
        }
    };
    match session.run() {
        session::Exit::Status(code) => ExitCode::from(code),
        session::Exit::Error(e) => {
            eprintln!("devicemodel: {e}");
            ExitCode::from(1)
        }
    }
}

//! Structured logging through the `log` facade: `-D FILE` sends the log to a file, `-d ITEMS`
//! widens it as QEMU's `-d` does. Guest mistakes are logged under the `guest_errors` target
//! (rate-limited at the call site by `devices::guest_warn!`) and shown only with `-d guest_errors`.

use std::io::Write;
use std::sync::Mutex;

use crate::cli::LogConfig;

struct Logger {
    out: Mutex<Box<dyn Write + Send>>,
    level: log::LevelFilter,
    guest_errors: bool,
    unimp: bool,
    start: std::time::Instant,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        if m.target() == devices::ratelimit::GUEST_ERRORS_TARGET {
            return self.guest_errors;
        }
        if m.target() == devices::ratelimit::UNIMP_TARGET {
            return self.unimp;
        }
        m.level() <= self.level
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let t = self.start.elapsed();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ =
            writeln!(out, "[{:>4}.{:06}] {:5} {}: {}", t.as_secs(), t.subsec_micros(), r.level(), r.target(), r.args());
    }

    fn flush(&self) {
        let _ = self.out.lock().map(|mut o| o.flush());
    }
}

pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let out: Box<dyn Write + Send> = match &cfg.file {
        Some(p) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("-D {}: cannot open the log file: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stderr()),
    };
    let level = if cfg.trace {
        log::LevelFilter::Trace
    } else if cfg.debug {
        log::LevelFilter::Debug
    } else if cfg.unimp {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    };
    let logger = Logger {
        out: Mutex::new(out),
        level,
        guest_errors: cfg.guest_errors,
        unimp: cfg.unimp,
        start: std::time::Instant::now(),
    };
    let mut max = level;
    if cfg.guest_errors {
        max = max.max(log::LevelFilter::Warn);
    }
    if cfg.unimp {
        max = max.max(log::LevelFilter::Info);
    }
    log::set_max_level(max);
    log::set_boxed_logger(Box::new(logger)).map_err(|e| e.to_string())
}

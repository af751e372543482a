//! QMP error responses.
//!
//! QEMU's QMP spec (docs/interop/qmp-spec.rst, "Error") defines an error response as
//! `{"error": {"class": json-string, "desc": json-string}, "id": json-value}`. The class is one of
//! a small fixed set (qapi/error.json `QapiErrorClass`); `desc` is free text for humans. libxl
//! branches on the class: an unknown command MUST be `CommandNotFound`, because its fallbacks
//! (e.g. query-cpus-fast -> query-cpus) depend on it.

use std::fmt;

/// The error classes of QEMU's `QapiErrorClass` (qapi/error.json). QEMU 8.2 still defines these
/// five; everything new is `GenericError`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    GenericError,
    CommandNotFound,
    DeviceNotActive,
    DeviceNotFound,
    KvmMissingCap,
}

impl ErrorClass {
    /// The class name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::GenericError => "GenericError",
            ErrorClass::CommandNotFound => "CommandNotFound",
            ErrorClass::DeviceNotActive => "DeviceNotActive",
            ErrorClass::DeviceNotFound => "DeviceNotFound",
            ErrorClass::KvmMissingCap => "KVMMissingCap",
        }
    }
}

/// A failed command: the `error` member of a QMP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QmpError {
    pub class: ErrorClass,
    pub desc: String,
}

impl QmpError {
    pub fn new(class: ErrorClass, desc: impl Into<String>) -> Self {
        QmpError { class, desc: desc.into() }
    }

    /// `GenericError` with a free-text description.
    pub fn generic(desc: impl Into<String>) -> Self {
        QmpError::new(ErrorClass::GenericError, desc)
    }

    /// The error QEMU returns for a command it does not have (qapi/qmp-dispatch.c:
    /// "The command %s has not been found").
    pub fn command_not_found(name: &str) -> Self {
        QmpError::new(ErrorClass::CommandNotFound, format!("The command {name} has not been found"))
    }

    /// `DeviceNotFound`, worded as QEMU does for a missing device id ("Device '%s' not found").
    pub fn device_not_found(device: &str) -> Self {
        QmpError::new(ErrorClass::DeviceNotFound, format!("Device '{device}' not found"))
    }

    /// `DeviceNotActive` with a free-text description (QEMU uses it e.g. for a device that has
    /// no medium or no backend attached).
    pub fn device_not_active(desc: impl Into<String>) -> Self {
        QmpError::new(ErrorClass::DeviceNotActive, desc)
    }

    /// True for the class a handler returns for names it does not implement; [`HandlerChain`]
    /// uses it to try the next handler.
    ///
    /// [`HandlerChain`]: super::HandlerChain
    pub fn is_command_not_found(&self) -> bool {
        self.class == ErrorClass::CommandNotFound
    }
}

impl fmt::Display for QmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class.as_str(), self.desc)
    }
}

impl std::error::Error for QmpError {}

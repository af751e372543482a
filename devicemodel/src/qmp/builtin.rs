//! Commands the server answers itself: capabilities negotiation, introspection, version and the
//! descriptor commands that need the connection's SCM_RIGHTS queue.

use serde_json::{json, Map, Value};

use super::args::Args;
use super::error::{ErrorClass, QmpError};
use super::handler::{CommandContext, QmpHandler};
use super::wire::version_info;

/// Names of the built-in commands, for `query-commands`.
pub const BUILTIN_COMMANDS: &[&str] =
    &["qmp_capabilities", "query-commands", "query-version", "add-fd", "remove-fd", "query-fdsets", "getfd", "closefd"];

/// The `package` string of the greeting and query-version.
pub fn package() -> String {
    format!("devicemodel-{}", env!("CARGO_PKG_VERSION"))
}

/// `qmp_capabilities` in negotiation mode. We offer no capabilities, so `enable` may only be empty
/// (QEMU: "Capability 'oob' not available" when the server did not offer it).
pub(crate) fn negotiate(args: &Map<String, Value>) -> Result<(), QmpError> {
    let mut a = Args::new(args);
    if let Some(list) = a.opt_array("enable")? {
        if let Some(first) = list.first() {
            return Err(match first.as_str() {
                Some("oob") => QmpError::generic("Capability 'oob' not available"),
                Some(other) => QmpError::generic(format!("Parameter 'enable' does not accept value '{other}'")),
                None => QmpError::generic("Invalid parameter type for 'enable[0]', expected: string"),
            });
        }
    }
    a.finish()
}

/// The error for any command but qmp_capabilities before negotiation (monitor/qmp.c).
pub(crate) fn negotiation_required() -> QmpError {
    QmpError::new(ErrorClass::CommandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'")
}

/// Runs a built-in command in command mode; `None` if `name` is not built in.
pub(crate) fn execute(
    ctx: &CommandContext<'_>,
    handler: &dyn QmpHandler,
    name: &str,
    args: &Map<String, Value>,
) -> Option<Result<Value, QmpError>> {
    let result = match name {
        // QEMU answers a second negotiation with CommandNotFound (qmp_qmp_capabilities).
        "qmp_capabilities" => Err(QmpError::new(
            ErrorClass::CommandNotFound,
            "Capabilities negotiation is already complete, command ignored",
        )),
        "query-commands" => Args::new(args).finish().map(|()| {
            let mut names: Vec<&str> = BUILTIN_COMMANDS.to_vec();
            names.extend(handler.command_names());
            names.sort_unstable();
            names.dedup();
            Value::Array(names.into_iter().map(|n| json!({"name": n})).collect())
        }),
        "query-version" => Args::new(args).finish().map(|()| version_info(&package())),
        "add-fd" => add_fd(ctx, args),
        "remove-fd" => remove_fd(ctx, args),
        "query-fdsets" => Args::new(args).finish().map(|()| ctx.fdsets().query()),
        "getfd" => getfd(ctx, args),
        "closefd" => closefd(ctx, args),
        _ => return None,
    };
    Some(result)
}

fn add_fd(ctx: &CommandContext<'_>, args: &Map<String, Value>) -> Result<Value, QmpError> {
    let mut a = Args::new(args);
    let fdset_id = a.opt_i64("fdset-id")?;
    let opaque = a.opt_str("opaque")?.map(str::to_owned);
    a.finish()?;
    if matches!(fdset_id, Some(id) if id < 0) {
        return Err(QmpError::generic("Parameter 'fdset-id' expects a non-negative value"));
    }
    let fd = ctx.take_received_fd().ok_or_else(|| QmpError::generic("No file descriptor supplied via SCM_RIGHTS"))?;
    let added = ctx.fdsets().add(fdset_id, fd, opaque)?;
    Ok(json!({"fdset-id": added.fdset_id, "fd": added.fd}))
}

fn remove_fd(ctx: &CommandContext<'_>, args: &Map<String, Value>) -> Result<Value, QmpError> {
    let mut a = Args::new(args);
    let fdset_id = a.i64("fdset-id")?;
    let fd = a.opt_i64("fd")?;
    a.finish()?;
    ctx.fdsets().remove(fdset_id, fd)?;
    Ok(json!({}))
}

fn getfd(ctx: &CommandContext<'_>, args: &Map<String, Value>) -> Result<Value, QmpError> {
    let mut a = Args::new(args);
    let name = a.str("fdname")?;
    a.finish()?;
    // QEMU (monitor/fds.c): names must not start with a digit, so they never look like numbers.
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(QmpError::generic("Parameter 'fdname' expects a name not starting with a digit"));
    }
    let fd = ctx.take_received_fd().ok_or_else(|| QmpError::generic("No file descriptor supplied via SCM_RIGHTS"))?;
    ctx.connection_fds().borrow_mut().insert_named(name, fd)?;
    Ok(json!({}))
}

fn closefd(ctx: &CommandContext<'_>, args: &Map<String, Value>) -> Result<Value, QmpError> {
    let mut a = Args::new(args);
    let name = a.str("fdname")?;
    a.finish()?;
    match ctx.take_named_fd(name) {
        Some(_closed) => Ok(json!({})),
        None => Err(QmpError::generic(format!("File descriptor named '{name}' not found"))),
    }
}

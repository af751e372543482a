//! Command-line forms that create QMP monitors, parsed for the CLI:
//!
//! - `-qmp unix:PATH,server=on,wait=off`
//! - `-chardev socket,id=ID,path=PATH,server=on,wait=off` + `-mon chardev=ID,mode=control`
//! - `-chardev socket,id=ID,fd=N,server=on,wait=off` (libxl with dm_restrict and the Xen 4.20
//!   probe pass an already listening socket)
//!
//! plus the other `-chardev` backends libxl emits (pty, socket, spicevmc) so the CLI has one
//! parser for the option. Syntax follows QEMU's QemuOpts: `key=value` pairs separated by commas,
//! a literal comma written as ",,", the first element may be an implied key (`socket` is
//! `backend=socket`, `-mon ID` is `chardev=ID`), and booleans accept on/off, yes/no, true/false.

use std::path::PathBuf;

/// Where a QMP listener comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenerSource {
    /// Bind a Unix socket at this path (removing a stale socket file first).
    Path(PathBuf),
    /// An inherited, already listening Unix socket (the fd number from the command line).
    /// [`super::QmpServer::start`] takes ownership of it.
    Fd(i32),
}

/// One QMP monitor socket to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The chardev id (`libxl-cmd`), or `compat_monitor0` for `-qmp` as QEMU names it; it is
    /// the label query-chardev reports and appears in logs.
    pub label: String,
    pub source: ListenerSource,
}

/// Address of a socket chardev.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketAddr {
    Path(PathBuf),
    Fd(i32),
}

/// `-chardev socket,...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketChardev {
    pub addr: SocketAddr,
    pub server: bool,
    /// QEMU blocks at startup until a client connects when a server socket has wait=on (the
    /// default). libxl always passes wait=off; we never block, and report the flag so the CLI can
    /// warn.
    pub wait: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChardevBackend {
    Socket(SocketChardev),
    Pty,
    Null,
    Stdio,
    File {
        path: PathBuf,
    },
    /// SPICE agent channel (`spicevmc,name=vdagent`).
    SpiceVmc {
        name: String,
    },
}

/// A parsed `-chardev` option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChardevSpec {
    pub id: String,
    pub backend: ChardevBackend,
}

impl ChardevSpec {
    /// The QMP listener this chardev provides when a `-mon mode=control` names it.
    pub fn listener(&self) -> Result<ListenerSpec, String> {
        match &self.backend {
            ChardevBackend::Socket(SocketChardev { addr, server: true, .. }) => Ok(ListenerSpec {
                label: self.id.clone(),
                source: match addr {
                    SocketAddr::Path(p) => ListenerSource::Path(p.clone()),
                    SocketAddr::Fd(fd) => ListenerSource::Fd(*fd),
                },
            }),
            ChardevBackend::Socket(_) => {
                Err(format!("chardev '{}': a QMP monitor needs a listening socket (server=on)", self.id))
            }
            _ => Err(format!("chardev '{}': a QMP monitor needs a 'socket' chardev", self.id)),
        }
    }
}

/// A parsed `-mon` option. Only control (QMP) monitors exist here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonSpec {
    pub chardev: String,
}

/// Splits QemuOpts syntax into (key, value) pairs; a bare word has no value.
fn split_opts(s: &str) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                cur.push(',');
            }
            ',' => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
            None => (item, None),
        })
        .collect()
}

fn parse_bool(opt: &str, key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        // A bare key is the legacy spelling of key=on (QEMU still accepts `server,nowait`).
        None => Ok(true),
        Some("on" | "yes" | "true" | "y") => Ok(true),
        Some("off" | "no" | "false" | "n") => Ok(false),
        Some(other) => Err(format!("{opt}: parameter '{key}' expects 'on' or 'off', not '{other}'")),
    }
}

fn parse_fd(opt: &str, v: &str) -> Result<i32, String> {
    match v.parse::<i32>() {
        Ok(fd) if fd >= 0 => Ok(fd),
        _ => Err(format!("{opt}: fd={v} is not a file descriptor number")),
    }
}

/// Parses the value of `-chardev`.
pub fn parse_chardev(s: &str) -> Result<ChardevSpec, String> {
    let opt = format!("-chardev {s}");
    let mut items = split_opts(s).into_iter();
    let backend = match items.next() {
        Some((k, None)) if !k.is_empty() => k,
        Some((k, Some(v))) if k == "backend" => v,
        _ => return Err(format!("{opt}: the backend type must come first (e.g. socket,id=...)")),
    };
    let mut id = None;
    let (mut path, mut fd, mut server, mut wait, mut name) = (None, None, false, None, None);
    for (k, v) in items {
        match (k.as_str(), backend.as_str()) {
            ("id", _) => id = v.filter(|v| !v.is_empty()),
            ("path", "socket" | "file") => path = v.map(PathBuf::from),
            ("fd", "socket") => fd = Some(parse_fd(&opt, v.as_deref().unwrap_or(""))?),
            ("server", "socket") => server = parse_bool(&opt, &k, v.as_deref())?,
            ("wait", "socket") => wait = Some(parse_bool(&opt, &k, v.as_deref())?),
            ("nowait", "socket") => wait = Some(!parse_bool(&opt, &k, v.as_deref())?),
            ("name", "spicevmc") => name = v,
            ("mux", _) if !parse_bool(&opt, &k, v.as_deref())? => {}
            _ => return Err(format!("{opt}: unsupported parameter '{k}' for backend '{backend}'")),
        }
    }
    let Some(id) = id else {
        return Err(format!("{opt}: parameter 'id' is missing"));
    };
    let backend = match backend.as_str() {
        "socket" => {
            let addr = match (path, fd) {
                (Some(p), None) if !p.as_os_str().is_empty() => SocketAddr::Path(p),
                (None, Some(fd)) => SocketAddr::Fd(fd),
                (Some(_), Some(_)) => return Err(format!("{opt}: give either path= or fd=, not both")),
                _ => return Err(format!("{opt}: a Unix socket needs path=PATH or fd=N (TCP is not supported)")),
            };
            // QEMU: wait defaults to on for server sockets.
            ChardevBackend::Socket(SocketChardev { addr, server, wait: server && wait.unwrap_or(true) })
        }
        "pty" => ChardevBackend::Pty,
        "null" => ChardevBackend::Null,
        "stdio" => ChardevBackend::Stdio,
        "file" => match path {
            Some(path) if !path.as_os_str().is_empty() => ChardevBackend::File { path },
            _ => return Err(format!("{opt}: parameter 'path' is missing")),
        },
        "spicevmc" => match name {
            Some(name) if !name.is_empty() => ChardevBackend::SpiceVmc { name },
            _ => return Err(format!("{opt}: parameter 'name' is missing")),
        },
        other => return Err(format!("{opt}: unsupported chardev backend '{other}'")),
    };
    Ok(ChardevSpec { id, backend })
}

/// Parses the value of `-mon`. Only `mode=control` (QMP) is supported: QEMU's default is the
/// human monitor (mode=readline), which we do not implement, so an absent mode is an error
/// rather than a silently different monitor.
pub fn parse_mon(s: &str) -> Result<MonSpec, String> {
    let opt = format!("-mon {s}");
    let (mut chardev, mut control) = (None, false);
    for (i, (k, v)) in split_opts(s).into_iter().enumerate() {
        match (k.as_str(), v) {
            (name, None) if i == 0 && !name.is_empty() => chardev = Some(name.to_owned()),
            ("chardev", Some(v)) if !v.is_empty() => chardev = Some(v),
            ("mode", Some(v)) if v == "control" => control = true,
            ("mode", Some(v)) => return Err(format!("{opt}: mode={v} is not supported (only mode=control, QMP)")),
            ("pretty", v) if !parse_bool(&opt, "pretty", v.as_deref())? => {}
            ("pretty", _) => return Err(format!("{opt}: pretty=on is not supported")),
            (k, _) => return Err(format!("{opt}: unsupported parameter '{k}'")),
        }
    }
    let Some(chardev) = chardev else {
        return Err(format!("{opt}: parameter 'chardev' is missing"));
    };
    if !control {
        return Err(format!("{opt}: only mode=control (QMP) monitors are supported"));
    }
    Ok(MonSpec { chardev })
}

/// Parses the value of `-qmp` (legacy chardev syntax `unix:PATH[,server=on][,wait=off]`).
pub fn parse_qmp(s: &str) -> Result<ListenerSpec, String> {
    let opt = format!("-qmp {s}");
    let mut items = split_opts(s).into_iter();
    let path = match items.next() {
        Some((first, None)) => first.strip_prefix("unix:").map(PathBuf::from),
        _ => None,
    };
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Err(format!("{opt}: only unix:PATH,server=on,wait=off sockets are supported"));
    };
    let mut server = false;
    for (k, v) in items {
        match k.as_str() {
            "server" => server = parse_bool(&opt, &k, v.as_deref())?,
            "wait" | "nowait" => {
                parse_bool(&opt, &k, v.as_deref())?;
            }
            _ => return Err(format!("{opt}: unsupported parameter '{k}'")),
        }
    }
    if !server {
        return Err(format!("{opt}: connecting out to a client is not supported; add server=on"));
    }
    Ok(ListenerSpec { label: "compat_monitor0".into(), source: ListenerSource::Path(path) })
}

/// Resolves every `-mon` to its `-chardev`, giving the listeners to pass to
/// [`super::QmpServer::start`] (append the `-qmp` ones).
pub fn monitor_listeners(chardevs: &[ChardevSpec], mons: &[MonSpec]) -> Result<Vec<ListenerSpec>, String> {
    let mut out = Vec::new();
    for mon in mons {
        let chardev = chardevs
            .iter()
            .find(|c| c.id == mon.chardev)
            .ok_or_else(|| format!("-mon chardev={}: chardev \"{}\" not found", mon.chardev, mon.chardev))?;
        if out.iter().any(|l: &ListenerSpec| l.label == chardev.id) {
            return Err(format!("-mon chardev={}: the chardev is already used by another monitor", mon.chardev));
        }
        out.push(chardev.listener()?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libxl_monitor_arguments() {
        let path = parse_chardev("socket,id=libxl-cmd,path=/var/run/xen/qmp-libxl-7,server=on,wait=off").unwrap();
        let fd = parse_chardev("socket,id=libxenstat-cmd,fd=9,server=on,wait=off").unwrap();
        let pty = parse_chardev("pty,id=libxl-channel0").unwrap();
        let mons =
            [parse_mon("chardev=libxl-cmd,mode=control").unwrap(), parse_mon("libxenstat-cmd,mode=control").unwrap()];
        let l = monitor_listeners(&[pty.clone(), path, fd], &mons).unwrap();
        assert_eq!(
            l,
            vec![
                ListenerSpec {
                    label: "libxl-cmd".into(),
                    source: ListenerSource::Path("/var/run/xen/qmp-libxl-7".into())
                },
                ListenerSpec { label: "libxenstat-cmd".into(), source: ListenerSource::Fd(9) },
            ]
        );
        assert_eq!(pty.backend, ChardevBackend::Pty);
        assert!(monitor_listeners(&[pty], &[parse_mon("chardev=libxl-channel0,mode=control").unwrap()]).is_err());
        assert!(monitor_listeners(&[], &mons).unwrap_err().contains("not found"));
    }

    #[test]
    fn qemu_opts_syntax() {
        let c = parse_chardev("socket,id=a,path=/tmp/x,,y,server,nowait").unwrap();
        assert_eq!(
            c.backend,
            ChardevBackend::Socket(SocketChardev {
                addr: SocketAddr::Path("/tmp/x,y".into()),
                server: true,
                wait: false
            })
        );
        let c = parse_chardev("socket,id=a,path=/tmp/q,server=on").unwrap();
        assert!(matches!(c.backend, ChardevBackend::Socket(SocketChardev { wait: true, .. })));
        let c = parse_chardev("spicevmc,id=vdagent,name=vdagent").unwrap();
        assert_eq!(c.backend, ChardevBackend::SpiceVmc { name: "vdagent".into() });
        assert_eq!(
            parse_qmp("unix:/tmp/q.sock,server=on,wait=off").unwrap().source,
            ListenerSource::Path("/tmp/q.sock".into())
        );
    }

    #[test]
    fn rejects_what_we_cannot_do() {
        for bad in [
            "socket,path=/x,server=on",
            "socket,id=a,host=127.0.0.1,port=4444,server=on",
            "socket,id=a,fd=-1,server=on",
            "socket,id=a,fd=3,path=/x,server=on",
            "socket,id=a,path=/x,server=maybe",
            "id=a,socket",
            "vc,id=a",
            "",
            ",",
        ] {
            assert!(parse_chardev(bad).is_err(), "{bad}");
        }
        for bad in ["chardev=a", "chardev=a,mode=readline", "mode=control", "chardev=a,mode=control,pretty=on", ""] {
            assert!(parse_mon(bad).is_err(), "{bad}");
        }
        for bad in ["tcp:127.0.0.1:4444,server=on", "unix:,server=on", "unix:/x", "unix:/x,server=on,bogus=1"] {
            assert!(parse_qmp(bad).is_err(), "{bad}");
        }
    }
}

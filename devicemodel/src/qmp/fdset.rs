//! File descriptor sets: the store behind `add-fd`, `remove-fd`, `query-fdsets` and the
//! `/dev/fdset/N` file names (QEMU monitor/fds.c, qapi/misc.json "add-fd").
//!
//! A client passes an open file over SCM_RIGHTS with `add-fd`, which files it in a numbered set;
//! a later command names the set as `/dev/fdset/N` where QEMU would open a path. Opening such a
//! name duplicates the set member whose access mode (O_RDONLY/O_WRONLY/O_RDWR) matches the
//! requested one, as util/osdep.c `qemu_open_internal` -> `monitor_fdset_dup_fd_add` do. libxl
//! uses this to hand a stub domain or a restricted device model the CD image (O_RDONLY) and the
//! device-state save file (O_WRONLY).
//!
//! Lifetime, as in QEMU's `monitor_fdset_cleanup`: `remove-fd` closes members at once; when the
//! last monitor connection closes, members of sets that were never opened are closed (a client
//! that added an fd and went away without using it leaks nothing). Sets that were opened stay
//! until `remove-fd`: QEMU keeps them while a duplicate is open, and we cannot see when the
//! caller closes its `File`. (QEMU also skips the cleanup while the VM is not running; we do not,
//! since every libxl flow uses a set on the connection that added it.)

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};

use rustix::fs::OFlags;
use serde_json::{json, Value};

use super::error::QmpError;

/// Upper bound on descriptors held in all sets together, so a client cannot exhaust our fd table.
pub const MAX_FDSET_FDS: usize = 256;

const FDSET_PREFIX: &str = "/dev/fdset/";

struct Member {
    fd: OwnedFd,
    opaque: Option<String>,
}

#[derive(Default)]
struct FdSet {
    members: Vec<Member>,
    /// Opened through [`FdSets::open_fdset_path`] at least once.
    opened: bool,
}

#[derive(Default)]
struct Inner {
    sets: BTreeMap<i64, FdSet>,
    connections: usize,
}

impl Inner {
    fn fd_count(&self) -> usize {
        self.sets.values().map(|s| s.members.len()).sum()
    }
}

/// The process-wide fd set store, shared by all monitor connections and the machine.
#[derive(Default)]
pub struct FdSets {
    inner: Mutex<Inner>,
}

/// What `add-fd` returns (qapi/misc.json `AddfdInfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddedFd {
    pub fdset_id: i64,
    pub fd: i32,
}

impl FdSets {
    pub fn new() -> Self {
        FdSets::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the map consistent (every mutation is a
        // single insert/remove), so continue with the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `add-fd`: files `fd` in set `fdset_id`, or in the lowest free set number when none is
    /// given (monitor_fdset_add_fd: "Use first available fdset ID").
    pub fn add(&self, fdset_id: Option<i64>, fd: OwnedFd, opaque: Option<String>) -> Result<AddedFd, QmpError> {
        if let Some(id) = fdset_id {
            if id < 0 {
                return Err(QmpError::generic("Parameter 'fdset-id' expects a non-negative value"));
            }
        }
        let mut inner = self.lock();
        if inner.fd_count() >= MAX_FDSET_FDS {
            return Err(QmpError::generic(format!(
                "Too many file descriptors in fd sets (at most {MAX_FDSET_FDS}); remove some with remove-fd"
            )));
        }
        let id = match fdset_id {
            Some(id) => id,
            None => {
                let mut next = 0i64;
                for &used in inner.sets.keys() {
                    if used != next {
                        break;
                    }
                    next += 1;
                }
                next
            }
        };
        let raw = fd.as_raw_fd();
        inner.sets.entry(id).or_default().members.push(Member { fd, opaque });
        Ok(AddedFd { fdset_id: id, fd: raw })
    }

    /// `remove-fd`: closes member `fd` of the set, or every member when `fd` is `None`; a set
    /// left empty disappears.
    pub fn remove(&self, fdset_id: i64, fd: Option<i64>) -> Result<(), QmpError> {
        let not_found = || {
            let name = match fd {
                Some(fd) => format!("fdset-id:{fdset_id}, fd:{fd}"),
                None => format!("fdset-id:{fdset_id}"),
            };
            QmpError::generic(format!("File descriptor named '{name}' not found"))
        };
        let mut inner = self.lock();
        let set = inner.sets.get_mut(&fdset_id).ok_or_else(not_found)?;
        match fd {
            Some(fd) => {
                let pos = set.members.iter().position(|m| i64::from(m.fd.as_raw_fd()) == fd).ok_or_else(not_found)?;
                set.members.remove(pos);
            }
            None => set.members.clear(),
        }
        if set.members.is_empty() {
            inner.sets.remove(&fdset_id);
        }
        Ok(())
    }

    /// `query-fdsets`: `[{"fdset-id": N, "fds": [{"fd": F, "opaque": "..."}]}]`, sets in
    /// ascending order, members in the order they were added.
    pub fn query(&self) -> Value {
        let inner = self.lock();
        let sets: Vec<Value> = inner
            .sets
            .iter()
            .map(|(id, set)| {
                let fds: Vec<Value> = set
                    .members
                    .iter()
                    .map(|m| {
                        let mut o = json!({"fd": m.fd.as_raw_fd()});
                        if let (Some(op), Value::Object(map)) = (&m.opaque, &mut o) {
                            map.insert("opaque".into(), Value::String(op.clone()));
                        }
                        o
                    })
                    .collect();
                json!({"fdset-id": id, "fds": fds})
            })
            .collect();
        Value::Array(sets)
    }

    /// True if `path` names an fd set (QEMU treats any path starting "/dev/fdset/" so).
    pub fn is_fdset_path(path: &str) -> bool {
        path.starts_with(FDSET_PREFIX)
    }

    /// Opens `/dev/fdset/N`: duplicates the member of set N whose access mode fits. `write`
    /// selects O_WRONLY, `!write` O_RDONLY; an exact match is preferred, an O_RDWR member is
    /// accepted for either (QEMU insists on the exact mode, but it asks for O_RDWR itself when it
    /// needs both; our callers ask for one direction).
    pub fn open_fdset_path(&self, path: &str, write: bool) -> Result<File, String> {
        let id = path
            .strip_prefix(FDSET_PREFIX)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("Could not parse fdset {path}"))?;
        let wanted = if write { OFlags::WRONLY } else { OFlags::RDONLY };
        let mut inner = self.lock();
        let set = inner.sets.get_mut(&id).ok_or_else(|| format!("Could not dup FD for {path}: no such fd set"))?;
        let mode = |m: &Member| rustix::fs::fcntl_getfl(m.fd.as_fd()).ok().map(|f| f & OFlags::RWMODE);
        let member = set
            .members
            .iter()
            .find(|m| mode(m) == Some(wanted))
            .or_else(|| set.members.iter().find(|m| mode(m) == Some(OFlags::RDWR)))
            .ok_or_else(|| {
                format!(
                    "Could not dup FD for {path}: no member is open for {}",
                    if write { "writing" } else { "reading" }
                )
            })?;
        let dup = member.fd.try_clone().map_err(|e| format!("Could not dup FD for {path}: {e}"))?;
        set.opened = true;
        Ok(File::from(dup))
    }

    /// A monitor connection opened (QEMU's mon_refcount++).
    pub(crate) fn connection_opened(&self) {
        self.lock().connections += 1;
    }

    /// A monitor connection closed; with none left, close members of sets nobody opened.
    pub(crate) fn connection_closed(&self) {
        let mut inner = self.lock();
        inner.connections = inner.connections.saturating_sub(1);
        if inner.connections == 0 {
            inner.sets.retain(|_, s| s.opened);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn temp_file(tag: &str) -> (std::path::PathBuf, File) {
        let dir = std::env::temp_dir().join(format!("qmp-fdset-{}-{tag}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("f");
        let f = File::options().create(true).truncate(true).read(true).write(true).open(&path).unwrap();
        (path, f)
    }

    #[test]
    fn ids_fill_the_lowest_gap_and_remove_closes() {
        let sets = FdSets::new();
        let (path, _) = temp_file("ids");
        let open = || OwnedFd::from(File::open(&path).unwrap());
        assert_eq!(sets.add(None, open(), None).unwrap().fdset_id, 0);
        assert_eq!(sets.add(Some(2), open(), None).unwrap().fdset_id, 2);
        assert_eq!(sets.add(None, open(), None).unwrap().fdset_id, 1);
        assert_eq!(sets.add(None, open(), None).unwrap().fdset_id, 3);
        assert!(sets.add(Some(-1), open(), None).is_err());
        sets.remove(1, None).unwrap();
        assert_eq!(sets.add(None, open(), None).unwrap().fdset_id, 1);
        assert_eq!(sets.remove(9, None).unwrap_err().desc, "File descriptor named 'fdset-id:9' not found");
        assert_eq!(
            sets.remove(0, Some(99999)).unwrap_err().desc,
            "File descriptor named 'fdset-id:0, fd:99999' not found"
        );
        let ids: Vec<i64> = sets.query().as_array().unwrap().iter().map(|s| s["fdset-id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![0, 1, 2, 3]);
    }

    #[test]
    fn open_picks_the_member_with_matching_access_mode() {
        let sets = FdSets::new();
        let (path, mut f) = temp_file("mode");
        f.write_all(b"medium").unwrap();
        let ro = OwnedFd::from(File::open(&path).unwrap());
        let wo = OwnedFd::from(File::options().write(true).open(&path).unwrap());
        let ro_raw = ro.as_raw_fd();
        sets.add(Some(5), wo, Some("save".into())).unwrap();
        sets.add(Some(5), ro, Some("raw:/img".into())).unwrap();

        let mut text = String::new();
        sets.open_fdset_path("/dev/fdset/5", false).unwrap().read_to_string(&mut text).unwrap();
        assert_eq!(text, "medium");
        let mut w = sets.open_fdset_path("/dev/fdset/5", true).unwrap();
        assert!(w.write_all(b"x").is_ok());

        sets.remove(5, Some(i64::from(ro_raw))).unwrap();
        assert!(sets.open_fdset_path("/dev/fdset/5", false).is_err());
        assert!(sets.open_fdset_path("/dev/fdset/6", true).is_err());
        assert!(sets.open_fdset_path("/dev/fdset/x", true).is_err());
        assert!(sets.open_fdset_path("/dev/fdset/", true).is_err());
        assert_eq!(
            sets.query(),
            json!([{"fdset-id": 5, "fds": [{"fd": sets.query()[0]["fds"][0]["fd"], "opaque": "save"}]}])
        );
    }

    #[test]
    fn last_connection_closing_drops_unopened_sets() {
        let sets = FdSets::new();
        let (path, _) = temp_file("cleanup");
        sets.connection_opened();
        sets.add(Some(0), OwnedFd::from(File::open(&path).unwrap()), None).unwrap();
        sets.add(Some(1), OwnedFd::from(File::open(&path).unwrap()), None).unwrap();
        sets.open_fdset_path("/dev/fdset/1", false).unwrap();
        sets.connection_opened();
        sets.connection_closed();
        assert_eq!(sets.query().as_array().unwrap().len(), 2);
        sets.connection_closed();
        let left: Vec<i64> = sets.query().as_array().unwrap().iter().map(|s| s["fdset-id"].as_i64().unwrap()).collect();
        assert_eq!(left, vec![1]);
    }
}

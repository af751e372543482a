//! Typed access to a command's `arguments` with QEMU's error wording.
//!
//! QEMU's generated marshallers read arguments through qapi/qobject-input-visitor.c, which
//! rejects a missing member ("Parameter 'x' is missing"), a member of the wrong JSON type
//! ("Invalid parameter type for 'x', expected: string"), an integer out of range ("Parameter 'x'
//! expects uint64") and, once the struct is complete, any member it did not consume ("Parameter
//! 'x' is unexpected"). `Args` reproduces that so clients (and their error handling) see the same
//! behaviour.
//!
//! ```ignore
//! let mut a = Args::new(args);
//! let id = a.str("id")?;
//! let force = a.opt_bool("force")?.unwrap_or(false);
//! a.finish()?;
//! ```

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::error::QmpError;

/// A reader over one command's arguments that remembers which members were consumed.
pub struct Args<'a> {
    map: &'a Map<String, Value>,
    used: BTreeSet<&'a str>,
}

fn missing(name: &str) -> QmpError {
    QmpError::generic(format!("Parameter '{name}' is missing"))
}

fn wrong_type(name: &str, expected: &str) -> QmpError {
    QmpError::generic(format!("Invalid parameter type for '{name}', expected: {expected}"))
}

fn out_of_range(name: &str, expected: &str) -> QmpError {
    QmpError::generic(format!("Parameter '{name}' expects {expected}"))
}

impl<'a> Args<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Args { map, used: BTreeSet::new() }
    }

    /// The raw member, marked consumed.
    pub fn opt_value(&mut self, name: &str) -> Option<&'a Value> {
        let (key, value) = self.map.get_key_value(name)?;
        self.used.insert(key.as_str());
        Some(value)
    }

    pub fn value(&mut self, name: &str) -> Result<&'a Value, QmpError> {
        self.opt_value(name).ok_or_else(|| missing(name))
    }

    pub fn opt_str(&mut self, name: &str) -> Result<Option<&'a str>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong_type(name, "string")),
        }
    }

    pub fn str(&mut self, name: &str) -> Result<&'a str, QmpError> {
        self.opt_str(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_bool(&mut self, name: &str) -> Result<Option<bool>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(wrong_type(name, "boolean")),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<bool, QmpError> {
        self.opt_bool(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_i64(&mut self, name: &str) -> Result<Option<i64>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| out_of_range(name, "int64")),
            Some(_) => Err(wrong_type(name, "integer")),
        }
    }

    pub fn i64(&mut self, name: &str) -> Result<i64, QmpError> {
        self.opt_i64(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_u64(&mut self, name: &str) -> Result<Option<u64>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(|| out_of_range(name, "uint64")),
            Some(_) => Err(wrong_type(name, "integer")),
        }
    }

    pub fn u64(&mut self, name: &str) -> Result<u64, QmpError> {
        self.opt_u64(name)?.ok_or_else(|| missing(name))
    }

    pub fn opt_object(&mut self, name: &str) -> Result<Option<&'a Map<String, Value>>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(wrong_type(name, "object")),
        }
    }

    pub fn opt_array(&mut self, name: &str) -> Result<Option<&'a [Value]>, QmpError> {
        match self.opt_value(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(wrong_type(name, "array")),
        }
    }

    /// Rejects members nobody asked for, as QEMU's visit_check_struct does. Call it after
    /// reading every argument the command knows.
    pub fn finish(self) -> Result<(), QmpError> {
        match self.map.keys().find(|k| !self.used.contains(k.as_str())) {
            Some(k) => Err(QmpError::generic(format!("Parameter '{k}' is unexpected"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn reads_typed_members_and_rejects_leftovers() {
        let m = map(json!({"id": "ide-5632", "force": true, "n": 3, "extra": null}));
        let mut a = Args::new(&m);
        assert_eq!(a.str("id").unwrap(), "ide-5632");
        assert_eq!(a.opt_bool("force").unwrap(), Some(true));
        assert_eq!(a.opt_bool("absent").unwrap(), None);
        assert_eq!(a.u64("n").unwrap(), 3);
        assert_eq!(a.finish().unwrap_err().desc, "Parameter 'extra' is unexpected");

        let m = map(json!({"id": "x"}));
        let mut a = Args::new(&m);
        a.str("id").unwrap();
        assert!(a.finish().is_ok());
    }

    #[test]
    fn errors_use_qemu_wording() {
        let m = map(json!({"id": 5, "force": "yes", "n": -1, "f": 1.5}));
        let mut a = Args::new(&m);
        assert_eq!(a.str("id").unwrap_err().desc, "Invalid parameter type for 'id', expected: string");
        assert_eq!(a.bool("force").unwrap_err().desc, "Invalid parameter type for 'force', expected: boolean");
        assert_eq!(a.u64("n").unwrap_err().desc, "Parameter 'n' expects uint64");
        assert_eq!(a.i64("f").unwrap_err().desc, "Parameter 'f' expects int64");
        assert_eq!(a.str("device").unwrap_err().desc, "Parameter 'device' is missing");
    }
}

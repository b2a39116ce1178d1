//! Task functions: named functions registered in the application binary, applied to
//! serialized partitions. The typed helpers serialize with JSON (serde_json).

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A task function: a serialized partition in, a serialized result (or an error) out.
pub type TaskFn = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, String> + Send + Sync>;

/// The largest task payload or result: bigger ones fail the task with a clear error
/// instead of breaking the executor's connection.
pub const MAX_MESSAGE_BYTES: usize = 128 << 20;

/// The task functions of one application binary, by name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, TaskFn>,
}

impl TaskRegistry {
    /// Adds `f` under `name`; returns false if the name is taken.
    pub fn insert(&mut self, name: &str, f: TaskFn) -> bool {
        if self.tasks.contains_key(name) {
            return false;
        }
        self.tasks.insert(name.to_owned(), f);
        true
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tasks.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tasks.keys().map(String::as_str)
    }

    /// Runs task `name` on `payload`. A panic is caught and becomes the task's error.
    pub fn run(&self, name: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let Some(f) = self.tasks.get(name) else {
            return Err(format!(
                "unknown task '{name}': not registered in this binary (registered: {})",
                self.names().collect::<Vec<_>>().join(", ")
            ));
        };
        match catch_unwind(AssertUnwindSafe(|| f(payload))) {
            Ok(Ok(out)) if out.len() > MAX_MESSAGE_BYTES => Err(format!(
                "task result of {} bytes is larger than the {} MiB limit",
                out.len(),
                MAX_MESSAGE_BYTES >> 20
            )),
            Ok(r) => r,
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                Err(format!("task panicked: {msg}"))
            }
        }
    }
}

/// Serializes a partition or a result as the typed helpers do (JSON).
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(v).map_err(|e| format!("cannot serialize: {e}"))
}

/// Deserializes what [`encode`] produced.
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, String> {
    serde_json::from_slice(b).map_err(|e| format!("cannot deserialize: {e}"))
}

/// Wraps a typed function as a [`TaskFn`].
pub fn typed<I, O, F>(f: F) -> TaskFn
where
    I: DeserializeOwned,
    O: Serialize,
    F: Fn(I) -> Result<O, String> + Send + Sync + 'static,
{
    Arc::new(move |bytes: &[u8]| {
        let input: I = decode(bytes).map_err(|e| format!("task input: {e}"))?;
        let out = f(input)?;
        encode(&out).map_err(|e| format!("task result: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> TaskRegistry {
        let mut r = TaskRegistry::default();
        assert!(r.insert(
            "double",
            typed(|v: Vec<u32>| Ok(v.iter().map(|x| x * 2).collect::<Vec<_>>()))
        ));
        assert!(r.insert(
            "boom",
            typed(|_: ()| -> Result<(), String> { panic!("kaboom") })
        ));
        assert!(r.insert("fail", Arc::new(|_: &[u8]| Err("nope".to_owned()))));
        assert!(!r.insert("fail", Arc::new(|_: &[u8]| Ok(vec![]))));
        r
    }

    #[test]
    fn typed_tasks_round_trip() {
        let r = registry();
        let out = r.run("double", &encode(&vec![1u32, 2]).unwrap_or_default());
        assert_eq!(decode::<Vec<u32>>(&out.unwrap_or_default()), Ok(vec![2, 4]));
    }

    #[test]
    fn errors_panics_and_unknown_names_become_task_errors() {
        let r = registry();
        assert_eq!(r.run("fail", b""), Err("nope".into()));
        assert_eq!(r.run("boom", b"null"), Err("task panicked: kaboom".into()));
        let unknown = r.run("nothing", b"").expect_err("unknown");
        assert!(unknown.starts_with("unknown task 'nothing'"), "{unknown}");
        let bad = r.run("double", b"not json").expect_err("bad input");
        assert!(bad.starts_with("task input: cannot deserialize"), "{bad}");
    }
}

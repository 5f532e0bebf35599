//! [`Registry`]: the table of functions workers can run, built once by the program.

use std::any::type_name;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Function;
use super::task_panic::catch_panic;
use super::wire::{Failure, PROTOCOL};

type Invoke = Arc<dyn Fn(&[u8]) -> Result<Vec<u8>, Failure> + Send + Sync>;

struct Entry {
    signature: String,
    invoke: Invoke,
}

/// The functions a program's workers can run, by stable name.
///
/// Build it once, in one function that both the pool's process and its workers call, and
/// hand it to [`init`](super::init) at the top of `main`. Workers are the same program
/// started again, so they build the same table; the handshake compares the two (names and
/// argument and result types) and refuses a worker whose table differs with
/// [`WorkerStartError::RegistryMismatch`](super::WorkerStartError::RegistryMismatch).
///
/// An explicit list, rather than registration scattered through the code, means a function
/// can never silently be missing from the worker because a linker dropped it.
///
/// # Examples
///
/// ```
/// use aio_blocking::process::{Function, Registry};
/// use aio_blocking::remote_fn;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// fn shout(s: String) -> String {
///     s.to_uppercase()
/// }
/// const SQUARE: Function<u64, u64> = remote_fn!(square);
/// const SHOUT: Function<String, String> = remote_fn!(shout);
///
/// fn registry() -> Registry {
///     Registry::new().register(&SQUARE).register(&SHOUT)
/// }
///
/// assert!(registry().contains(SQUARE.name()));
/// assert_eq!(registry().len(), 2);
/// assert_eq!(registry().fingerprint(), registry().fingerprint());
/// ```
#[derive(Default)]
pub struct Registry {
    entries: BTreeMap<&'static str, Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds `f`, and returns the registry to chain further calls.
    ///
    /// # Panics
    ///
    /// If another function was registered under the same name: names are what workers
    /// call functions by, so they must be unique.
    #[track_caller]
    #[must_use]
    pub fn register<A, R>(mut self, f: &Function<A, R>) -> Self
    where
        A: DeserializeOwned + 'static,
        R: Serialize + 'static,
    {
        let func = f.f;
        // The whole call, decoding and encoding included, is guarded: a `Deserialize`,
        // `Serialize` or `Drop` of the user's types may panic too.
        let invoke: Invoke = Arc::new(move |bytes: &[u8]| {
            catch_panic(|| {
                let args: A = postcard::from_bytes(bytes)
                    .map_err(|e| Failure::DeserializeArgs(describe::<A>(&e)))?;
                let out = func(args);
                postcard::to_allocvec(&out).map_err(|e| Failure::SerializeResult(describe::<R>(&e)))
            })?
        });
        let entry = Entry {
            signature: format!("fn({}) -> {}", type_name::<A>(), type_name::<R>()),
            invoke,
        };
        if self.entries.insert(f.name(), entry).is_some() {
            panic!(
                "a function named `{}` is registered twice: each name must be unique",
                f.name()
            );
        }
        self
    }

    /// Adds every function of `other`: for programs that assemble their registry from
    /// several modules.
    ///
    /// # Panics
    ///
    /// If a name is in both registries.
    #[track_caller]
    #[must_use]
    pub fn merge(mut self, other: Registry) -> Self {
        for (name, entry) in other.entries {
            if self.entries.insert(name, entry).is_some() {
                panic!("a function named `{name}` is registered twice: each name must be unique");
            }
        }
        self
    }

    /// Whether a function of this name is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// How many functions are registered.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no function is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries.keys().copied()
    }

    /// A hash of the wire protocol version and of every name with its argument and result
    /// types: what the handshake compares. Stable for a given build of a program.
    pub fn fingerprint(&self) -> u64 {
        // FNV-1a: small, and the same in every process, unlike a randomly keyed hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(&PROTOCOL.to_le_bytes());
        for (name, entry) in &self.entries {
            eat(name.as_bytes());
            eat(&[0]);
            eat(entry.signature.as_bytes());
            eat(&[0]);
        }
        h
    }

    /// `(name, signature)` of every function, sorted by name: what a worker announces.
    pub(crate) fn signatures(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(name, e)| ((*name).to_owned(), e.signature.clone()))
            .collect()
    }

    /// Runs the function `name` on encoded arguments, in a worker.
    pub(crate) fn call(&self, name: &str, args: &[u8]) -> Result<Vec<u8>, Failure> {
        self.call_each(name, std::iter::once(args)).remove(0)
    }

    /// Runs the function `name` on each encoded argument of a batch, in a worker, looking
    /// it up once.
    pub(crate) fn call_each<'a>(
        &self,
        name: &str,
        args: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> Vec<Result<Vec<u8>, Failure>> {
        match self.entries.get(name) {
            Some(entry) => args.map(|a| (entry.invoke)(a)).collect(),
            None => args
                .map(|_| Err(Failure::NotRegistered(name.to_owned())))
                .collect(),
        }
    }
}

/// A serde error with the type it concerns: postcard's errors do not carry the message a
/// `Serialize` or `Deserialize` implementation gave.
pub(crate) fn describe<T>(error: &postcard::Error) -> String {
    format!("{error} (a `{}`)", type_name::<T>())
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, e)| (k, &e.signature)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(x: u32) -> u32 {
        x + 1
    }
    fn boom(_: ()) -> u32 {
        panic!("boom")
    }
    const INC: Function<u32, u32> = Function::new("inc", inc);
    const INC_U64: Function<u64, u64> = Function::new("inc", |x| x + 1);
    const BOOM: Function<(), u32> = Function::new("boom", boom);

    #[test]
    fn the_fingerprint_covers_names_and_types() {
        let a = Registry::new().register(&INC);
        let b = Registry::new().register(&INC_U64);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), Registry::new().fingerprint());
        assert_eq!(
            a.fingerprint(),
            Registry::new().register(&INC).fingerprint()
        );
    }

    #[test]
    fn calls_decode_run_and_encode() {
        let r = Registry::new().register(&INC).register(&BOOM);
        let out = r
            .call("inc", &postcard::to_allocvec(&41u32).unwrap())
            .unwrap();
        assert_eq!(postcard::from_bytes::<u32>(&out).unwrap(), 42);
        assert!(matches!(
            r.call("inc", &[]),
            Err(Failure::DeserializeArgs(_))
        ));
        assert_eq!(
            r.call("nope", &[]),
            Err(Failure::NotRegistered("nope".into()))
        );
        match r.call("boom", &[]) {
            Err(Failure::Panic { message, .. }) => assert_eq!(message, "boom"),
            other => panic!("expected a panic, got {other:?}"),
        }
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_name_registered_twice_is_refused() {
        let _ = Registry::new().register(&INC).register(&INC_U64);
    }
}

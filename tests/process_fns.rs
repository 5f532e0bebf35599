//! The functions the process pool tests run in workers, shared by the test binary
//! (`process.rs`) and the worker binary (`process_worker.rs`) so that both build the same
//! [`Registry`].

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use aio::process::remote_fn;
use aio::process::{Function, Registry};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `x * x`.
pub fn square(x: u64) -> u64 {
    x * x
}

/// The worker's process id.
pub fn pid((): ()) -> u32 {
    std::process::id()
}

/// Sleeps `ms` milliseconds, then returns the worker's pid.
pub fn sleep_ms(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

/// Creates the file `path` holding the worker's pid, whole: it is written under another
/// name and renamed, so a test that sees the file can read the pid at once.
fn touch(path: &str) {
    let partial = format!("{path}.partial");
    std::fs::write(&partial, std::process::id().to_string()).expect("cannot write the marker");
    std::fs::rename(&partial, path).expect("cannot create the marker");
}

/// Creates the file `path` (proof that the task ran), sleeps `ms`, returns the pid.
pub fn touch_then_sleep((path, ms): (String, u64)) -> u32 {
    touch(&path);
    sleep_ms(ms)
}

/// Creates the file `path` (proof that the task runs), waits until the file `release`
/// exists, then returns the pid: a task that ends when the test says so.
pub fn touch_then_wait_for((path, release): (String, String)) -> u32 {
    touch(&path);
    // Sleeps at least once: the task always takes a few milliseconds, long enough for its
    // worker to look for cancels after it.
    loop {
        std::thread::sleep(Duration::from_millis(5));
        if std::path::Path::new(&release).exists() {
            return std::process::id();
        }
    }
}

/// Panics with `message`.
pub fn panics(message: String) -> u32 {
    panic!("{message}")
}

/// Sends SIGKILL to its own worker, as an out-of-memory killer would.
pub fn kill_self((): ()) -> u32 {
    let _ = std::process::Command::new("kill")
        .args(["-9", &std::process::id().to_string()])
        .status();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Writes `message` to stderr, then aborts the worker (SIGABRT).
pub fn abort_with(message: String) -> u32 {
    eprintln!("{message}");
    std::process::abort()
}

/// Writes `message` to stderr and returns: output of a task that went well.
pub fn say(message: String) -> u32 {
    eprintln!("{message}");
    0
}

/// Panics with `message` and catches the panic itself, then aborts the worker: the crash
/// report's stderr shows whether the panic was printed.
pub fn panic_caught_then_abort(message: String) -> u32 {
    let caught = std::panic::catch_unwind(|| panic!("{message}"));
    assert!(caught.is_err());
    eprintln!("aborting");
    std::process::abort()
}

/// Exits the worker with `code`, as `sys.exit(code)` would.
pub fn exit_with(code: i32) -> u32 {
    std::process::exit(code)
}

/// The upper-case copy of `s`: a big argument comes back as a big result.
pub fn upper(s: String) -> String {
    s.to_ascii_uppercase()
}

/// `x / 2`, panicking on odd numbers.
pub fn half(x: u64) -> u64 {
    assert!(x % 2 == 0, "{x} is odd");
    x / 2
}

/// A number that refuses to be serialized when it is 13 and to be deserialized when it
/// is 14, and panics when it is serialized as 16.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picky(pub u32);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 13 {
            return Err(serde::ser::Error::custom("13 refuses to be serialized"));
        }
        assert!(self.0 != 16, "16 panics when serialized");
        s.serialize_u32(self.0)
    }
}

impl<'de> Deserialize<'de> for Picky {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 14 {
            return Err(serde::de::Error::custom("14 refuses to be deserialized"));
        }
        Ok(Picky(n))
    }
}

/// `Picky(n)`.
pub fn picky_from(n: u32) -> Picky {
    Picky(n)
}

/// The number in a `Picky`.
pub fn picky_into(p: Picky) -> u32 {
    p.0
}

static RECORDED: AtomicU32 = AtomicU32::new(0);

/// An initializer that records `value`.
pub fn init_record(value: u32) -> Result<(), InitError> {
    RECORDED.store(value, Ordering::SeqCst);
    Ok(())
}

/// What [`init_record`] recorded in this worker.
pub fn initialized((): ()) -> u32 {
    RECORDED.load(Ordering::SeqCst)
}

/// An initializer that fails with `message`.
pub fn init_fail(message: String) -> Result<(), InitError> {
    Err(InitError(message))
}

/// An initializer that crashes the worker before it is ready.
pub fn init_abort((): ()) -> Result<(), InitError> {
    std::process::abort()
}

/// An initializer's error.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitError(pub String);

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`square`].
pub const SQUARE: Function<u64, u64> = remote_fn!(square);
/// [`pid`].
pub const PID: Function<(), u32> = remote_fn!(pid);
/// [`sleep_ms`].
pub const SLEEP_MS: Function<u64, u32> = remote_fn!(sleep_ms);
/// [`touch_then_sleep`].
pub const TOUCH_THEN_SLEEP: Function<(String, u64), u32> = remote_fn!(touch_then_sleep);
/// [`touch_then_wait_for`].
pub const TOUCH_THEN_WAIT_FOR: Function<(String, String), u32> = remote_fn!(touch_then_wait_for);
/// [`panics`].
pub const PANICS: Function<String, u32> = remote_fn!(panics);
/// [`kill_self`].
pub const KILL_SELF: Function<(), u32> = remote_fn!(kill_self);
/// [`abort_with`].
pub const ABORT_WITH: Function<String, u32> = remote_fn!(abort_with);
/// [`say`].
pub const SAY: Function<String, u32> = remote_fn!(say);
/// [`panic_caught_then_abort`].
pub const PANIC_CAUGHT_THEN_ABORT: Function<String, u32> = remote_fn!(panic_caught_then_abort);
/// [`exit_with`].
pub const EXIT_WITH: Function<i32, u32> = remote_fn!(exit_with);
/// [`upper`].
pub const UPPER: Function<String, String> = remote_fn!(upper);
/// [`half`].
pub const HALF: Function<u64, u64> = remote_fn!(half);
/// [`picky_from`].
pub const PICKY_FROM: Function<u32, Picky> = remote_fn!(picky_from);
/// [`picky_into`].
pub const PICKY_INTO: Function<Picky, u32> = remote_fn!(picky_into);
/// [`init_record`].
pub const INIT_RECORD: Function<u32, Result<(), InitError>> = remote_fn!(init_record);
/// [`initialized`].
pub const INITIALIZED: Function<(), u32> = remote_fn!(initialized);
/// [`init_fail`].
pub const INIT_FAIL: Function<String, Result<(), InitError>> = remote_fn!(init_fail);
/// [`init_abort`].
pub const INIT_ABORT: Function<(), Result<(), InitError>> = remote_fn!(init_abort);

/// Creates the empty file `x-pid` in the directory `dir` and returns `x`: proof of each
/// time a call ran, and where. A file is created whole or not at all, even by a worker
/// killed as it creates it; a line appended to a shared file is not (a write cut by
/// SIGKILL leaves part of its line, and the next line written joins it).
pub fn record((dir, x): (String, u64)) -> u64 {
    let run = std::path::Path::new(&dir).join(format!("{x}-{}", std::process::id()));
    std::fs::File::create_new(run).expect("cannot record the run");
    x
}

/// [`record`].
pub const RECORD: Function<(String, u64), u64> = remote_fn!(record);

/// A copy of the worker's socket to its pool, taken from its stdin before `init` by a
/// worker binary started in mode `keep-socket`: a task can then write to the socket, as
/// no task can in a worker started otherwise.
static POOL_SOCKET: std::sync::OnceLock<std::os::fd::OwnedFd> = std::sync::OnceLock::new();

/// Keeps a copy of the socket the worker is given as stdin, for [`garble`]. Called before
/// `init`, which points stdin elsewhere.
pub fn keep_pool_socket() {
    use std::os::fd::AsFd as _;
    let fd = std::io::stdin().as_fd().try_clone_to_owned();
    let _ = POOL_SOCKET.set(fd.expect("no stdin"));
}

/// Writes bytes that are not a frame to the worker's socket (kept by [`keep_pool_socket`]),
/// as a bug in the worker would; returns the pid.
pub fn garble((): ()) -> u32 {
    use std::io::Write as _;
    let socket = POOL_SOCKET.get().expect("the worker kept no socket");
    let socket = socket.try_clone().expect("cannot copy the socket");
    std::fs::File::from(socket)
        .write_all(&[0xFF; 8])
        .expect("cannot write to the socket");
    std::process::id()
}

/// [`garble`].
pub const GARBLE: Function<(), u32> = remote_fn!(garble);

/// Reads the worker's stdin to its end, then runs `cat` with the same stdin: how many bytes
/// each read, and whether `cat` succeeded (it fails on a closed stdin). A worker's stdin is
/// `/dev/null`, not its socket, so both read nothing and `cat` succeeds.
pub fn read_stdin((): ()) -> (usize, usize, bool) {
    use std::io::Read as _;
    let mut own = Vec::new();
    std::io::stdin()
        .read_to_end(&mut own)
        .expect("cannot read stdin");
    let child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::inherit())
        .output()
        .expect("cannot run cat");
    (own.len(), child.stdout.len(), child.status.success())
}

/// [`read_stdin`].
pub const READ_STDIN: Function<(), (usize, usize, bool)> = remote_fn!(read_stdin);

/// A function the worker binary does not register.
pub const NOT_REGISTERED: Function<u64, u64> = Function::new("tests::not_registered", square);

/// Every function above but [`NOT_REGISTERED`]: the registry of the worker binary.
pub fn registry() -> Registry {
    Registry::new()
        .register(&SQUARE)
        .register(&PID)
        .register(&SLEEP_MS)
        .register(&TOUCH_THEN_SLEEP)
        .register(&TOUCH_THEN_WAIT_FOR)
        .register(&PANICS)
        .register(&KILL_SELF)
        .register(&ABORT_WITH)
        .register(&SAY)
        .register(&PANIC_CAUGHT_THEN_ABORT)
        .register(&EXIT_WITH)
        .register(&UPPER)
        .register(&HALF)
        .register(&PICKY_FROM)
        .register(&PICKY_INTO)
        .register(&INIT_RECORD)
        .register(&INITIALIZED)
        .register(&INIT_FAIL)
        .register(&INIT_ABORT)
        .register(&SPAWN_THEN_ABORT)
        .register(&RECORD)
        .register(&GARBLE)
        .register(&READ_STDIN)
}

/// A registry that differs from [`registry`]: what a worker built from other code has.
pub fn other_registry() -> Registry {
    Registry::new().register(&SQUARE).register(&NOT_REGISTERED)
}

/// Starts `sleep 3600`, which inherits the worker's stdout and stderr, and, if `socket`, is
/// given a copy of the worker's socket to its pool as its stdin (kept by
/// [`keep_pool_socket`]), as a fork of the worker would hold it. Writes the sleeper's pid to
/// the file `path`, and aborts the worker while the sleeper still holds them open.
pub fn spawn_then_abort((path, socket): (String, bool)) -> u32 {
    let mut sleep = std::process::Command::new("sleep");
    sleep.arg("3600");
    if socket {
        let socket = POOL_SOCKET.get().expect("the worker kept no socket");
        sleep.stdin(socket.try_clone().expect("cannot copy the socket"));
    }
    let sleeper = sleep.spawn().expect("cannot start sleep");
    std::fs::write(&path, sleeper.id().to_string()).expect("cannot write the pid file");
    std::mem::forget(sleeper);
    std::process::abort()
}

/// [`spawn_then_abort`].
pub const SPAWN_THEN_ABORT: Function<(String, bool), u32> = remote_fn!(spawn_then_abort);

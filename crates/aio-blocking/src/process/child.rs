//! The worker side: what a process started by a pool runs instead of its `main`.
//!
//! The worker needs no async runtime. Its main thread writes the handshake, runs the
//! initializer, then runs the calls it is sent, in order, and writes the outcome of each
//! before it starts the next. The pool may send calls ahead; the worker takes in those
//! that have arrived before each call, with the cancels of calls not yet started, which it
//! skips. The pool reads while it writes, so neither side's writes can wait on the
//! other's, whatever the sizes. The end of the stream (the pool closed it, or the pool's process died) ends
//! an idle worker at once; a watchdog thread ends a busy one within a tenth of a second of
//! its parent's death, seen as a change of parent process id. (A thread reading the socket
//! during calls would see the end of stream too, but costs a thread hand-off per call.)

use std::collections::{HashSet, VecDeque};
use std::io::{BufWriter, Read as _, Write as _};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::exit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Registry;
use super::task_panic;
use super::wire::{Frame, FrameBuf, Header, PROTOCOL, TASK_MARK, WORKER_ENV, write_frame_blocking};

/// Exit codes of a worker that gives up. A pool reports them in its errors.
pub(crate) const EXIT_NOT_A_WORKER: i32 = 2;
const EXIT_INIT_FAILED: i32 = 3;
const EXIT_PROTOCOL: i32 = 4;
/// A call at least this long is followed by a look at the socket for cancels.
const LONG_CALL: Duration = Duration::from_millis(1);
/// How often the watchdog checks that the parent is alive.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(100);

/// Whether this process was started by a pool as a worker: the marker is set to the pid of
/// our parent.
pub(crate) fn is_worker_process() -> bool {
    marker().is_some_and(|pid| pid == std::os::unix::process::parent_id())
}

/// Whether this process was started as a worker by a pool that died before the worker got
/// to [`init`](super::init): the marker names a process that is gone, and we were handed
/// to another parent. Such a process must not run the program. (A process that merely
/// inherited the marker, started by a worker, has a live pool in its marker.)
pub(crate) fn is_orphaned_worker() -> bool {
    marker().is_some_and(|pid| {
        pid != std::os::unix::process::parent_id()
            && Path::new("/proc/self").exists()
            && !Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// The pool pid in this process's worker marker, if it has one.
fn marker() -> Option<u32> {
    std::env::var(WORKER_ENV).ok()?.parse().ok()
}

/// Set while this process serves a pool: a pool built by a function it runs is a pool of
/// a worker, not of a program that forgot `init`.
static SERVING: AtomicBool = AtomicBool::new(false);

/// Whether this process is a worker serving its pool.
pub(crate) fn is_serving() -> bool {
    SERVING.load(Ordering::Relaxed)
}

fn die(code: i32, what: std::fmt::Arguments<'_>) -> ! {
    eprintln!("aio process worker {}: {what}", std::process::id());
    exit(code)
}

/// The socket to the pool, which the worker is given as its standard input. Taken onto a
/// descriptor of its own (closed on exec), and stdin becomes `/dev/null`: a task that reads
/// its stdin, or starts a program that inherits it, reads nothing, and cannot take frames
/// off the socket or write into it.
fn pool_socket() -> UnixStream {
    let fd = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => die(
            EXIT_NOT_A_WORKER,
            format_args!("cannot take the pool's socket from stdin: {e}"),
        ),
    };
    let stream = UnixStream::from(fd);
    // A Unix socket has a local address; a terminal, pipe or file does not.
    if let Err(e) = stream.local_addr() {
        die(
            EXIT_NOT_A_WORKER,
            format_args!(
                "started as a worker, but stdin is not a pool's socket ({e}); \
                 workers are started by a ProcessPool, not by hand"
            ),
        );
    }
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .and_then(|null| Ok(rustix::stdio::dup2_stdin(null)?));
    if let Err(e) = null {
        die(
            EXIT_PROTOCOL,
            format_args!("cannot point stdin away from the pool's socket: {e}"),
        );
    }
    stream
}

/// Serves the pool that started this process, and exits: never returns.
pub(crate) fn serve(registry: Registry) -> ! {
    SERVING.store(true, Ordering::Relaxed);
    let stream = pool_socket();
    task_panic::install_panic_hook();
    let write_half = match stream.try_clone() {
        Ok(s) => s,
        Err(e) => die(EXIT_PROTOCOL, format_args!("cannot clone the socket: {e}")),
    };
    let mut writer = BufWriter::with_capacity(64 << 10, write_half);
    let mut inbox = Inbox {
        socket: stream,
        frames: FrameBuf::new(),
    };

    let hello = Header::Hello {
        protocol: PROTOCOL,
        fingerprint: registry.fingerprint(),
        functions: registry.signatures(),
    };
    if write_frame_blocking(&mut writer, &hello, &[]).is_err() {
        exit(0); // The pool is gone already.
    }
    let start = match inbox.next_frame() {
        Ok(Some(frame)) => frame,
        // The pool refused the handshake, or went away: nothing to do.
        Ok(None) => exit(0),
        Err(e) => die(
            EXIT_PROTOCOL,
            format_args!("bad handshake from the pool: {e}"),
        ),
    };
    let Frame {
        header: Header::Start { initializer },
        parts,
    } = start
    else {
        die(
            EXIT_PROTOCOL,
            format_args!("expected the pool's start message, got {:?}", start.header),
        )
    };
    start_watchdog();
    let mut ready_parts = Vec::new();
    if let Some(name) = initializer {
        let args = parts.first().map_or(&[][..], Vec::as_slice);
        match registry.call(&name, args) {
            Ok(out) => ready_parts.push(out),
            Err(failure) => {
                let _ = write_frame_blocking(&mut writer, &Header::InitFailed { failure }, &[]);
                exit(EXIT_INIT_FAILED);
            }
        }
    }
    let ready: Vec<&[u8]> = ready_parts.iter().map(Vec::as_slice).collect();
    if write_frame_blocking(&mut writer, &Header::Ready, &ready).is_err() {
        exit(0);
    }
    drop(ready_parts);

    let mut calls = Calls::default();
    loop {
        if calls.pending.is_empty() {
            // Nothing to run: wait for the pool.
            match inbox.next_frame() {
                Ok(Some(frame)) => calls.take(frame),
                // The pool closed the socket (a graceful stop) or its process died.
                Ok(None) => exit(0),
                Err(e) => die(EXIT_PROTOCOL, format_args!("reading from the pool: {e}")),
            }
        }
        calls.read_ahead(&mut inbox);
        let Some((id, name, args)) = calls.pending.pop_front() else {
            continue;
        };
        let sent = if calls.cancelled.remove(&id) {
            write_frame_blocking(&mut writer, &Header::Skipped { id }, &[])
        } else {
            let started = Instant::now();
            // What the task writes to stderr follows the mark: its own, for a crash report.
            let _ = std::io::stderr().write_all(TASK_MARK);
            let results = registry.call_each(&name, args.iter().map(Vec::as_slice));
            drop(args);
            // A long call may have been followed by cancels of the calls behind it.
            calls.check_socket = started.elapsed() >= LONG_CALL;
            let outcomes = results.iter().map(|r| r.as_ref().err().cloned()).collect();
            let parts: Vec<&[u8]> = results
                .iter()
                .filter_map(|r| r.as_ref().ok().map(Vec::as_slice))
                .collect();
            // Written before the next call starts: if that one kills the worker, the pool
            // knows which call did.
            write_frame_blocking(&mut writer, &Header::Done { id, outcomes }, &parts)
        };
        if sent.is_err() {
            exit(0); // The pool is gone.
        }
    }
}

/// The calls a worker has been sent and not yet run, in order, and the cancels that came
/// for them.
#[derive(Default)]
struct Calls {
    pending: VecDeque<(u64, String, Vec<Vec<u8>>)>,
    cancelled: HashSet<u64>,
    /// Look for frames on the socket, not only in what is buffered, before the next call.
    check_socket: bool,
}

impl Calls {
    fn take(&mut self, frame: Frame) {
        match frame.header {
            Header::Call { id, name } => self.pending.push_back((id, name, frame.parts)),
            Header::Cancel { id } => {
                // A call that has run already is answered already.
                if self.pending.iter().any(|(pending, ..)| *pending == id) {
                    self.cancelled.insert(id);
                }
            }
            other => die(
                EXIT_PROTOCOL,
                format_args!("expected a call or a cancel, got {other:?}"),
            ),
        }
    }

    /// Takes in the frames that have arrived whole, without waiting for more: the calls
    /// sent ahead, and the cancels of calls not yet started. After a long call, also reads
    /// what the socket holds; after short ones, only what is buffered, which saves two
    /// system calls a call: a cancel that comes later finds its call run, and the pool
    /// drops the result.
    fn read_ahead(&mut self, inbox: &mut Inbox) {
        if std::mem::take(&mut self.check_socket) {
            inbox.read_available();
        }
        loop {
            match inbox.frames.take_frame() {
                Ok(Some(frame)) => self.take(frame),
                Ok(None) => return,
                Err(e) => die(EXIT_PROTOCOL, format_args!("reading from the pool: {e}")),
            }
        }
    }
}

/// The worker's end of the socket, read side: what has arrived, taken frame by frame.
struct Inbox {
    socket: UnixStream,
    frames: FrameBuf,
}

impl Inbox {
    /// The next frame, waiting for it. `Ok(None)` is a clean end of the stream.
    fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.frames.take_frame()? {
                return Ok(Some(frame));
            }
            match self.socket.read(self.frames.spare()) {
                Ok(0) if self.frames.is_empty() => return Ok(None),
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.frames.filled(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads what the socket holds now, without waiting. An end of the stream or an error
    /// shows at the next [`next_frame`](Self::next_frame).
    fn read_available(&mut self) {
        if self.socket.set_nonblocking(true).is_err() {
            return;
        }
        while let Ok(n @ 1..) = self.socket.read(self.frames.spare()) {
            self.frames.filled(n);
        }
        if let Err(e) = self.socket.set_nonblocking(false) {
            die(
                EXIT_PROTOCOL,
                format_args!("cannot block on the socket: {e}"),
            );
        }
    }
}

/// Exits the worker when its parent dies while it is busy (an idle worker sees the end of
/// its socket first).
fn start_watchdog() {
    let parent = std::os::unix::process::parent_id();
    let spawned = std::thread::Builder::new()
        .name("aio-worker-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(WATCHDOG_PERIOD);
                if std::os::unix::process::parent_id() != parent {
                    exit(0);
                }
            }
        });
    if let Err(e) = spawned {
        die(
            EXIT_PROTOCOL,
            format_args!("cannot start the watchdog thread: {e}"),
        );
    }
}

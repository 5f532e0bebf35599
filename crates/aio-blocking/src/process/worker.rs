//! One worker process, seen from the pool: start and handshake, calls, and its end.

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UnixStream;
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::oneshot;

use super::config::Config;
use super::conn::Conn;
use super::error::{ExitInfo, WorkerCrashed, WorkerStartError};
use super::wire::{Failure, Frame, Header, PRINT_PANICS_ENV, PROTOCOL, TASK_MARK, WORKER_ENV};

/// How long the stderr forwarder waits after a read that held only task marks: without
/// it, a worker running thousands of short tasks would wake it once per task.
const MARKS_PAUSE: Duration = Duration::from_millis(1);
/// How much of a worker's stderr is kept for crash reports.
const STDERR_TAIL: usize = 8 << 10;
/// How long to wait for a worker to exit after its socket closed or it was told to stop,
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for the last of a dead worker's stderr.
const STDERR_GRACE: Duration = Duration::from_millis(500);
/// The outcome of one call of a batch: the encoded result, or why there is none.
pub(crate) type Outcome = Result<Vec<u8>, Failure>;

/// A running, ready worker process.
pub(crate) struct Worker {
    child: Child,
    pid: u32,
    conn: Conn,
    stderr: Stderr,
    /// Calls sent to it.
    pub(crate) calls: usize,
}

impl Worker {
    /// Starts a worker and waits until it is ready.
    pub(crate) async fn start(cfg: &Config) -> Result<Worker, WorkerStartError> {
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|e| WorkerStartError::Spawn {
                exe: cfg.exe.clone(),
                message: format!("cannot create a socket pair: {e}"),
            })?;
        let spawn_error = |e: std::io::Error| WorkerStartError::Spawn {
            exe: cfg.exe.clone(),
            message: e.to_string(),
        };
        ours.set_nonblocking(true).map_err(spawn_error)?;
        let ours = UnixStream::from_std(ours).map_err(spawn_error)?;

        let mut cmd = Command::new(&cfg.exe);
        cmd.env(WORKER_ENV, std::process::id().to_string())
            .env_remove(PRINT_PANICS_ENV)
            .envs(cfg.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if cfg.print_worker_panics {
            cmd.env(PRINT_PANICS_ENV, "1");
        }
        let spawned = cmd.spawn();
        // The command holds our copy of the worker's end of the socket: close it, so the
        // worker's death is an end of stream here.
        drop(cmd);
        let mut child = spawned.map_err(spawn_error)?;
        let pid = child.id().unwrap_or_default();
        let stderr = Stderr::forward(child.stderr.take());
        let mut worker = Worker {
            child,
            pid,
            conn: Conn::new(ours),
            stderr,
            calls: 0,
        };
        tracing::debug!(pid, exe = %cfg.exe.display(), "starting a process pool worker");
        match tokio::time::timeout(cfg.handshake_timeout, worker.handshake(cfg)).await {
            Ok(Ok(())) => Ok(worker),
            Ok(Err(e)) => {
                worker.kill().await;
                Err(e)
            }
            Err(_) => {
                worker.kill().await;
                Err(WorkerStartError::HandshakeTimeout {
                    after: cfg.handshake_timeout,
                })
            }
        }
    }

    async fn handshake(&mut self, cfg: &Config) -> Result<(), WorkerStartError> {
        let hello = self.handshake_frame().await?;
        let Header::Hello {
            protocol,
            fingerprint,
            functions,
        } = hello.header
        else {
            return Err(handshake_error(format!(
                "expected a hello, got {:?}",
                hello.header
            )));
        };
        if protocol != PROTOCOL {
            return Err(WorkerStartError::ProtocolMismatch {
                worker: protocol,
                pool: PROTOCOL,
            });
        }
        if fingerprint != cfg.registry.fingerprint() {
            return Err(registry_mismatch(&cfg.registry.signatures(), &functions));
        }
        let (start, parts) = match &cfg.initializer {
            Some(init) => (Some(init.name.to_owned()), vec![init.args.as_slice()]),
            None => (None, vec![]),
        };
        let start = Header::Start { initializer: start };
        let sent = match self.conn.queue(&start, &parts) {
            Ok(()) => self.conn.flush().await,
            Err(e) => Err(e),
        };
        sent.map_err(|e| handshake_error(format!("cannot send the start message: {e}")))?;
        let ready = self.handshake_frame().await?;
        match ready.header {
            Header::Ready => {}
            Header::InitFailed { failure } => {
                return Err(WorkerStartError::Initializer {
                    message: super::ProcessError::from_failure(failure).to_string(),
                });
            }
            other => return Err(handshake_error(format!("expected ready, got {other:?}"))),
        }
        if let Some(init) = &cfg.initializer {
            let out = ready.parts.first().map_or(&[][..], Vec::as_slice);
            (init.check)(out).map_err(|message| WorkerStartError::Initializer { message })?;
        }
        Ok(())
    }

    /// The next frame of the handshake; the worker's exit is an error here.
    async fn handshake_frame(&mut self) -> Result<Frame, WorkerStartError> {
        match self.conn.next_frame().await {
            Ok(Some(frame)) => Ok(frame),
            Ok(None) => {
                let (exit, stderr_tail) = self.ended().await;
                Err(WorkerStartError::Exited { exit, stderr_tail })
            }
            Err(e) => Err(handshake_error(e.to_string())),
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The connection to the worker.
    pub(crate) fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// The connection to the worker, and a future that resolves when the worker has
    /// exited (reaping it). A fork of the worker may hold its end of the socket open, so
    /// the end of the stream alone cannot tell that the worker is gone.
    pub(crate) fn io(&mut self) -> (&mut Conn, impl Future<Output = ()> + '_) {
        let Worker { child, conn, .. } = self;
        (conn, async move {
            let _ = child.wait().await;
        })
    }

    /// After its connection failed or it exited: how the worker ended. Kills it if it is somehow
    /// still alive.
    pub(crate) async fn crashed(mut self) -> WorkerCrashed {
        let (exit, stderr_tail) = self.ended().await;
        WorkerCrashed {
            pid: self.pid,
            exit,
            stderr_tail,
        }
    }

    /// Waits for the process to end (killing it after a grace period) and collects the
    /// end of its stderr.
    async fn ended(&mut self) -> (ExitInfo, String) {
        let status = match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        };
        let exit = status.map_or(
            ExitInfo {
                code: None,
                signal: None,
            },
            ExitInfo::from_status,
        );
        (exit, self.stderr.tail().await)
    }

    /// Resolves when the process has exited (it is then reaped). Cancel safe.
    pub(crate) async fn exited(&mut self) {
        let _ = self.child.wait().await;
    }

    /// Kills the worker and reaps it.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Stops an idle worker gracefully: closes its socket, so it exits, and reaps it
    /// (killing it if it does not exit in time).
    pub(crate) async fn retire(mut self) {
        // Closing the socket is an end of stream for the worker.
        drop(self.conn);
        match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        }
    }
}

fn handshake_error(message: String) -> WorkerStartError {
    WorkerStartError::Handshake { message }
}

fn registry_mismatch(ours: &[(String, String)], theirs: &[(String, String)]) -> WorkerStartError {
    let ours: BTreeMap<&str, &str> = ours.iter().map(|(n, s)| (&**n, &**s)).collect();
    let theirs: BTreeMap<&str, &str> = theirs.iter().map(|(n, s)| (&**n, &**s)).collect();
    let missing = ours
        .keys()
        .filter(|n| !theirs.contains_key(*n))
        .map(|n| (*n).to_owned())
        .collect();
    let extra = theirs
        .keys()
        .filter(|n| !ours.contains_key(*n))
        .map(|n| (*n).to_owned())
        .collect();
    let changed = ours
        .iter()
        .filter(|(n, s)| theirs.get(*n).is_some_and(|t| t != *s))
        .map(|(n, _)| (*n).to_owned())
        .collect();
    WorkerStartError::RegistryMismatch {
        missing,
        extra,
        changed,
    }
}

/// A worker's stderr, forwarded to ours by a thread that keeps the last few KiB written
/// since the worker started its current task. A thread, not a task: writing to our stderr
/// blocks when whoever reads it is slow, and must not hold up a runtime thread.
struct Stderr {
    tail: Arc<Mutex<VecDeque<u8>>>,
    /// Resolves (with an error) when the forwarder has seen the end of the pipe.
    closed: Option<oneshot::Receiver<()>>,
}

impl Stderr {
    fn forward(pipe: Option<ChildStderr>) -> Stderr {
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let Some(pipe) = pipe.and_then(|p| p.into_owned_fd().ok()) else {
            return Stderr { tail, closed: None };
        };
        let (done, closed) = oneshot::channel::<()>();
        let shared = Arc::clone(&tail);
        let spawned = std::thread::Builder::new()
            .name("aio-worker-stderr".into())
            .spawn(move || {
                let _done = done;
                let mut pipe = std::fs::File::from(pipe);
                let mut buf = vec![0u8; 64 << 10];
                let mut marks = MarkScanner::default();
                let text_seen = std::cell::Cell::new(false);
                let mut piece = |piece: Piece<'_>| match piece {
                    Piece::TaskStart => shared
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clear(),
                    Piece::Text(text) => {
                        text_seen.set(true);
                        // Before the lock: a slow reader of our stderr may block this
                        // write, and must not block whoever reads the tail.
                        let _ = std::io::stderr().write_all(text);
                        let mut tail = shared.lock().unwrap_or_else(PoisonError::into_inner);
                        tail.extend(text);
                        let excess = tail.len().saturating_sub(STDERR_TAIL);
                        tail.drain(..excess);
                    }
                };
                loop {
                    let n = match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    text_seen.set(false);
                    marks.feed(&buf[..n], &mut piece);
                    if !text_seen.get() {
                        // Only the marks of tasks starting: let them pile up a while
                        // rather than wake this thread once per task.
                        std::thread::sleep(MARKS_PAUSE);
                    }
                }
                marks.finish(&mut piece);
            });
        Stderr {
            tail,
            closed: spawned.ok().map(|_| closed),
        }
    }

    /// The tail, once the pipe has closed (or after a short grace: a grandchild may hold
    /// it open).
    async fn tail(&mut self) -> String {
        if let Some(closed) = self.closed.take() {
            let _ = tokio::time::timeout(STDERR_GRACE, closed).await;
        }
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let (a, b) = tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A piece of a worker's stderr: text to forward, or the mark of a task's start.
#[derive(Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a [u8]),
    TaskStart,
}

/// Finds the [`TASK_MARK`]s in a worker's stderr, read in chunks that may split a mark.
#[derive(Default)]
struct MarkScanner {
    /// The end of the last chunk, held back because it may begin a mark.
    held: Vec<u8>,
}

impl MarkScanner {
    /// Hands `piece` the text and the marks of `chunk`, in order, except for an end that
    /// may begin a mark, which waits for the next chunk.
    fn feed(&mut self, chunk: &[u8], mut piece: impl FnMut(Piece<'_>)) {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(chunk);
        let mut rest = &data[..];
        while let Some(at) = rest.windows(TASK_MARK.len()).position(|w| w == TASK_MARK) {
            if at > 0 {
                piece(Piece::Text(&rest[..at]));
            }
            piece(Piece::TaskStart);
            rest = &rest[at + TASK_MARK.len()..];
        }
        let keep = (1..TASK_MARK.len())
            .rev()
            .find(|&k| rest.ends_with(&TASK_MARK[..k]))
            .unwrap_or(0);
        let (text, held) = rest.split_at(rest.len() - keep);
        if !text.is_empty() {
            piece(Piece::Text(text));
        }
        self.held = held.to_vec();
    }

    /// Hands on what was held back: the stream ended inside no mark.
    fn finish(&mut self, mut piece: impl FnMut(Piece<'_>)) {
        if !self.held.is_empty() {
            piece(Piece::Text(&std::mem::take(&mut self.held)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{MarkScanner, Piece, TASK_MARK};

    /// What the scanner makes of `chunks`: text as strings, marks as `|`.
    fn scan(chunks: &[&[u8]]) -> String {
        let mut out = String::new();
        let mut marks = MarkScanner::default();
        let mut piece = |p: Piece<'_>| match p {
            Piece::Text(t) => out.push_str(std::str::from_utf8(t).unwrap()),
            Piece::TaskStart => out.push('|'),
        };
        for chunk in chunks {
            marks.feed(chunk, &mut piece);
        }
        marks.finish(&mut piece);
        out
    }

    #[test]
    fn marks_are_found_whole_split_across_chunks_and_back_to_back() {
        let mark = TASK_MARK;
        let both = [mark, mark].concat();
        let (head, rest) = mark.split_at(3);
        assert_eq!(scan(&[b"before", mark, b"after"]), "before|after");
        assert_eq!(scan(&[&[b"a".as_slice(), mark, b"b"].concat()]), "a|b");
        assert_eq!(scan(&[&[b"a".as_slice(), head].concat(), rest]), "a|");
        assert_eq!(scan(&[&both, b"x"]), "||x");
    }

    #[test]
    fn text_that_only_looks_like_the_start_of_a_mark_is_passed_on() {
        let (head, _) = TASK_MARK.split_at(4);
        let head = std::str::from_utf8(head).unwrap();
        assert_eq!(
            scan(&[format!("x{head}").as_bytes(), b"y"]),
            format!("x{head}y")
        );
        assert_eq!(scan(&[format!("x{head}").as_bytes()]), format!("x{head}"));
    }
}

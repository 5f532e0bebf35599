//! Starting a server with `tg.start(...)`: a TCP echo server that reports its address once
//! it is listening, and clients in the same group that use it at once.
//!
//! 1. The server task binds a `TcpListener` to 127.0.0.1 port 0, so the OS picks a free
//!    port, and calls `status.started(addr)`. `start` returns that address as soon as the
//!    server is listening, while the server goes on running in the group: no sleep, no
//!    retry loop, no race between the server binding and the client connecting. The server
//!    serves each connection in a task of its own inner group, `connections`.
//! 2. A second server on the same address fails to bind *before* it is ready, so `start`
//!    returns `StartError::Failed` with the `io::Error`, and the group carries on: a failure
//!    before ready belongs to the caller of `start`, not to the group.
//! 3. Two clients in the group send a few lines each and check the echoes; then the body
//!    calls `tg.cancel()`, which stops the accept loop (its `on_cancel` cleanup notes it)
//!    and ends the group without an error. The port is free again afterwards.
//!
//! Run it with `cargo run --example server_start`.
//!
//! It mirrors Trio's `nursery.start`:
//!
//! ```python
//! async def serve(port, *, task_status=trio.TASK_STATUS_IGNORED):
//!     listeners = await trio.open_tcp_listeners(port, host="127.0.0.1")
//!     task_status.started(listeners[0].socket.getsockname())
//!     await trio.serve_listeners(echo, listeners)   # a task per connection
//!
//! async with trio.open_nursery() as nursery:
//!     addr = await nursery.start(serve, 0)         # returns once it is listening
//!     try:
//!         await nursery.start(serve, addr[1])      # the port is taken: raises here
//!     except OSError:
//!         ...
//!     nursery.start_soon(client, addr)
//!     ...
//!     nursery.cancel_scope.cancel()
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, StartError, TaskGroup, TaskStatus, on_cancel};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// What happened, in order, with the time it happened.
#[derive(Clone)]
struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn new() -> Log {
        Log {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn push(&self, event: impl Into<String>) {
        let event = event.into();
        println!("   {:>3} ms {event}", self.start.elapsed().as_millis());
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

/// The echo server, as a task for `start`: binds to `addr`, reports the address it got,
/// then serves every connection in a task of its own until it is cancelled.
async fn serve(status: TaskStatus<SocketAddr>, addr: SocketAddr, log: Log) -> Result<(), BoxError> {
    // A failure here, before `started`, is `start`'s error.
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    status.started(addr);
    // From here on the server is an ordinary task of the group. It serves each connection
    // in a task of an inner group, until it is cancelled.
    TaskGroup::<BoxError>::builder()
        .name("connections")
        .scope(|connections| async move {
            let closing = log.clone();
            let accept_loop = async move {
                loop {
                    let (stream, peer) = listener.accept().await?;
                    log.push(format!("server: accepted {peer}"));
                    connections.spawn_named(format!("conn {peer}"), echo(stream, log.clone()))?;
                }
            };
            on_cancel(accept_loop, |cancelled| async move {
                closing.push(format!("server: {cancelled}; listener closed"));
                Ok(())
            })
            .await
        })
        .await?;
    Ok(())
}

/// Echoes every line back until the client closes its side; then closes the connection.
async fn echo(stream: TcpStream, log: Log) -> Result<(), BoxError> {
    let peer = stream.peer_addr()?;
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    let mut echoed = 0;
    while let Some(line) = lines.next_line().await? {
        writer.write_all(format!("{line}\n").as_bytes()).await?;
        echoed += 1;
    }
    log.push(format!("server: {peer} hung up after {echoed} lines"));
    Ok(()) // dropping the stream closes our side
}

/// A client: sends each line and reads its echo, then closes the connection and waits for
/// the server to close it too. Returns the echoes.
async fn client(
    name: &'static str,
    addr: SocketAddr,
    lines: &'static [&'static str],
    log: Log,
) -> Result<Vec<String>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (reader, mut writer) = stream.into_split();
    let mut replies = BufReader::new(reader).lines();
    let mut echoes = Vec::new();
    for line in lines {
        writer.write_all(format!("{line}\n").as_bytes()).await?;
        let echo = replies.next_line().await?.ok_or("the server hung up")?;
        log.push(format!("{name}: sent {line:?}, got {echo:?}"));
        echoes.push(echo);
    }
    // Close our side and wait for the server to close its own: a clean goodbye.
    writer.shutdown().await?;
    let after = replies.next_line().await?;
    assert_eq!(after, None, "nothing after the echoes");
    Ok(echoes)
}

const LINES_A: &[&str] = &["hello", "structured", "concurrency"];
const LINES_B: &[&str] = &["ping", "pong"];

pub(crate) fn main() {
    aio::run(async {
        let log = Log::new();
        let l = log.clone();
        let body = TaskGroup::<BoxError>::builder()
            .name("echo")
            .scope(|tg| async move {
                // 1. Start the server and get its address once it listens.
                let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
                let server_log = l.clone();
                let addr = tg
                    .start_named("server", |status| serve(status, any_port, server_log))
                    .await?;
                l.push(format!("start(server) returned {addr}: it is listening"));

                // 2. A second server on the same address fails before it is ready.
                let server_log = l.clone();
                let taken = tg
                    .start_named("server-2", |status| serve(status, addr, server_log))
                    .await
                    .unwrap_err();
                l.push(format!("start(server-2) on {addr}: {taken}"));
                let StartError::Failed(error) = taken else {
                    panic!("expected a bind failure, got {taken:?}");
                };
                let error = error.downcast::<io::Error>().expect("an io::Error");
                assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
                assert!(!tg.is_cancelled(), "the group carries on");

                // 3. Two clients, at once; then shut everything down.
                let a = tg.spawn_named("client-a", client("client-a", addr, LINES_A, l.clone()))?;
                let b = tg.spawn_named("client-b", client("client-b", addr, LINES_B, l.clone()))?;
                let echoes = (a.await?, b.await?);
                l.push("body: every echo checked; tg.cancel()");
                tg.cancel();
                Ok((addr, echoes))
            });
        // A network example must never hang: give the whole thing five seconds.
        let (addr, (a, b)) = aio::timeout(Duration::from_secs(5), body)
            .await
            .expect("a few round trips on localhost take milliseconds")
            .expect("cancel() is not an error");
        assert_eq!(a, LINES_A);
        assert_eq!(b, LINES_B);

        // Both connections were served to the end before the group was cancelled, and the
        // accept loop was cancelled.
        let events = log.events();
        let hung_up = events.iter().filter(|e| e.contains("hung up")).count();
        assert_eq!(hung_up, 2, "{events:?}");
        assert!(
            events.last().unwrap().ends_with("listener closed"),
            "{events:?}"
        );
        // The listener is gone with its group: the port can be bound again.
        let again = TcpListener::bind(addr).await.expect("the port is free");
        assert_eq!(again.local_addr().unwrap(), addr);
        println!("   after the group: {addr} is free again, and bound anew");
    });
}

//! Workloads of the process pool: round trips to worker processes, alone, all at once, and
//! through `map` with chunks, against Python's `ProcessPoolExecutor` on the same shapes
//! (two workers, a no-op function). Tokio has no process pool, so there is no baseline.
//!
//! Each run starts its own pool and waits until both workers are up before the clock
//! starts, as the Python twin does; the bench binary calls [`aio::process::init`] with
//! [`registry`] first thing, so it can be its own worker.
//!
//! The floors are what the machine does with no pool at all: 8-byte messages through the
//! pipes of one child process (`cat`, which echoes what it reads), from a Tokio task, one
//! at a time (ping-pong) or all at once (pipelined).

use aio::ProcessPool;
use aio::process::{Function, Registry, remote_fn};
use futures::TryStreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::runtime::Runtime;

use super::{Sample, time_in_task};

/// Workers of every pool here, as in the Python twin.
const WORKERS: usize = 2;
/// Items per call of `procpool_map_chunk256`.
const CHUNK: usize = 256;

/// The function every workload calls: it returns its argument.
fn noop(x: u64) -> u64 {
    x
}

const NOOP: Function<u64, u64> = remote_fn!(noop);

/// The functions the bench binary's workers run.
pub(crate) fn registry() -> Registry {
    Registry::new().register(&NOOP)
}

/// A pool whose workers are all up.
fn ready_pool(rt: &Runtime) -> ProcessPool {
    rt.block_on(async {
        let pool = ProcessPool::builder()
            .max_workers(WORKERS)
            .build()
            .expect("cannot build the process pool");
        let warm: Vec<_> = (0..WORKERS as u64)
            .map(|i| pool.submit(&NOOP, i).unwrap())
            .collect();
        for (i, h) in warm.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i as u64), "the warm-up call failed");
        }
        // Workers start on demand: the second may still be starting if the first took both.
        let started = std::time::Instant::now();
        while pool.worker_pids().len() < WORKERS {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "a worker did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        pool
    })
}

fn finish(rt: &Runtime, pool: ProcessPool) {
    rt.block_on(pool.shutdown(false));
}

/// `ops` calls, each awaited before the next.
pub(crate) fn roundtrip_seq_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, pool) = time_in_task(rt, async move {
        for i in 0..ops as u64 {
            assert_eq!(pool.submit(&NOOP, i).unwrap().await, Ok(i));
        }
        pool
    });
    finish(rt, pool);
    elapsed.into()
}

/// `ops` calls submitted at once, then awaited.
pub(crate) fn submit_concurrent_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, pool) = time_in_task(rt, async move {
        let handles: Vec<_> = (0..ops as u64)
            .map(|i| pool.submit(&NOOP, i).unwrap())
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i as u64));
        }
        pool
    });
    finish(rt, pool);
    elapsed.into()
}

/// `map` over `ops` items in chunks of 256.
pub(crate) fn map_chunk256_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, (pool, out)) = time_in_task(rt, async move {
        let out: Vec<u64> = pool
            .map(&NOOP, 0..ops as u64)
            .chunksize(CHUNK)
            .try_collect()
            .await
            .expect("a map item failed");
        (pool, out)
    });
    assert!(
        out.iter().copied().eq(0..ops as u64),
        "map lost or reordered items"
    );
    finish(rt, pool);
    elapsed.into()
}

/// A `cat` child whose pipes echo what is written, started before the clock.
fn echo_child(rt: &Runtime) -> (Child, ChildStdin, ChildStdout) {
    rt.block_on(async {
        let mut child = Command::new("cat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start cat for the pipe floor");
        let stdin = child.stdin.take().expect("cat's stdin");
        let stdout = child.stdout.take().expect("cat's stdout");
        (child, stdin, stdout)
    })
}

fn end_echo_child(rt: &Runtime, mut child: Child, stdin: ChildStdin) {
    drop(stdin);
    rt.block_on(async { child.wait().await.expect("cat exits") });
}

/// The floor of `procpool_roundtrip_seq`: one 8-byte message at a time through a child's
/// pipes, each echo awaited before the next.
pub(crate) fn pipe_pingpong(rt: &Runtime, ops: usize) -> Sample {
    let (child, mut stdin, mut stdout) = echo_child(rt);
    let (elapsed, stdin) = time_in_task(rt, async move {
        let mut buf = [0u8; 8];
        for i in 0..ops as u64 {
            stdin.write_all(&i.to_le_bytes()).await.expect("write");
            stdout.read_exact(&mut buf).await.expect("read");
            assert_eq!(u64::from_le_bytes(buf), i, "the echo is wrong");
        }
        stdin
    });
    end_echo_child(rt, child, stdin);
    elapsed.into()
}

/// The floor of `procpool_submit_concurrent`: every 8-byte message written at once (in
/// 4 KiB writes) while another task reads the echoes.
pub(crate) fn pipe_pipelined(rt: &Runtime, ops: usize) -> Sample {
    let (child, mut stdin, mut stdout) = echo_child(rt);
    let (elapsed, stdin) = time_in_task(rt, async move {
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 8 * ops];
            stdout.read_exact(&mut buf).await.expect("read");
            buf.chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
                .eq(0..ops as u64)
        });
        let bytes: Vec<u8> = (0..ops as u64).flat_map(u64::to_le_bytes).collect();
        for chunk in bytes.chunks(4096) {
            stdin.write_all(chunk).await.expect("write");
        }
        assert!(reader.await.expect("the reader"), "the echoes are wrong");
        stdin
    });
    end_echo_child(rt, child, stdin);
    elapsed.into()
}

//! Reading and writing real files without blocking the runtime: `aio::to_thread`,
//! `tokio::fs` and a `ThreadPool`.
//!
//! The files live in a fresh directory under the system's temporary directory, with a name
//! of its own (the process id and the time), written by the example and removed at the
//! end, also if something fails.
//!
//! 1. Six files are written at once with `tokio::fs::write`, each in a task of a group
//!    (aiofiles' `write`), then read at once, each with
//!    `aio::to_thread(move || std::fs::read_to_string(path))`: the blocking reads run on
//!    Tokio's blocking pool, never on the runtime's workers. A file that is missing is an
//!    ordinary `io::Error` inside the `Ok` of `to_thread`: the function's own result comes
//!    back as it was.
//! 2. The same files read with `tokio::fs::read_to_string` under `aio::gather`, and joined
//!    into a seventh file with `tokio::fs::File` and `write_all`. `tokio::fs` is
//!    `to_thread` already done for you: each call runs the `std::fs` function on the
//!    blocking pool. What it does not do is count against a `CapacityLimiter`, or stop a
//!    call that has started when the caller is cancelled (neither does `to_thread`; see
//!    `to_thread_cancellable` in `examples/blocking_sdk.rs`).
//! 3. A `ThreadPool` of two threads, each set up once by an initializer, counts the words
//!    of every file with `pool.map`: lazy, at most two files in flight, results in input
//!    order.
//!
//! Run it with `cargo run --example read_files`.
//!
//! It mirrors:
//!
//! ```python
//! async def read_file(path: str) -> str:
//!     return await asyncio.to_thread(open(path).read)
//!
//! async with asyncio.TaskGroup() as tg:
//!     texts = [tg.create_task(read_file(p)) for p in paths]
//!
//! async def read_file(path):                      # aiofiles
//!     async with aiofiles.open(path, "r") as f:
//!         return await f.read()
//!
//! contents = await asyncio.gather(*(read_file(p) for p in paths))
//! async with aiofiles.open("combined.txt", "w") as f:
//!     await f.write("\n".join(contents))
//!
//! with ThreadPoolExecutor(max_workers=2, initializer=setup) as pool:
//!     counts = list(pool.map(count_words, paths, buffersize=2))
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::{BoxError, TaskGroup, ThreadPool};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// How many files the example writes.
const FILES: usize = 6;

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("aio-read-files-{}-{now}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)?; // fails rather than share a directory that exists
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The text of file `i`: `i + 1` lines of three words.
fn text(i: usize) -> String {
    (0..=i)
        .map(|line| format!("line {line} file-{i}\n"))
        .collect()
}

pub(crate) fn main() {
    let dir = TempDir::new().expect("a temporary directory");
    aio::run(async {
        let paths = write_at_once(dir.path()).await;
        read_at_once(&paths).await;
        read_and_join_with_tokio_fs(dir.path(), &paths).await;
        count_words_on_a_pool(&paths).await;
    });
    let removed = dir.path().to_owned();
    drop(dir);
    assert!(!removed.exists());
    println!("   removed {}", removed.display());
}

async fn write_at_once(dir: &Path) -> Vec<PathBuf> {
    println!(
        "== 1. {FILES} files written at once with tokio::fs, read at once with aio::to_thread"
    );
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| dir.join(format!("file-{i}.txt")))
        .collect();
    TaskGroup::<BoxError>::scope(|tg| {
        let paths = &paths;
        async move {
            for (i, path) in paths.iter().enumerate() {
                let path = path.clone();
                tg.spawn(async move { Ok(tokio::fs::write(path, text(i)).await?) })?;
            }
            Ok(())
        }
    })
    .await
    .expect("every file is written");
    let mut listed = 0;
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .expect("the directory is there");
    while let Some(_entry) = entries.next_entry().await.expect("listing the directory") {
        listed += 1;
    }
    assert_eq!(listed, FILES);
    println!("   wrote {FILES} files in {}", dir.display());
    paths
}

async fn read_at_once(paths: &[PathBuf]) {
    let texts = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut reads = Vec::new();
        for path in paths {
            let path = path.clone();
            // `open(path).read` on a thread: the read blocks there, not here.
            reads.push(tg.spawn(async move {
                Ok(aio::to_thread(move || std::fs::read_to_string(path)).await??)
            })?);
        }
        let mut texts = Vec::new();
        for read in reads {
            texts.push(read.await?);
        }
        Ok(texts)
    })
    .await
    .expect("every file is there");
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(t, &text(i));
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    println!("   read {bytes} bytes; every file has the text it was written with");

    let missing = paths[0].with_file_name("missing.txt");
    let err = aio::to_thread(move || std::fs::read_to_string(missing))
        .await
        .expect("to_thread itself succeeds")
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    println!("   a missing file: the function's own error, as it was: {err}");
}

async fn read_and_join_with_tokio_fs(dir: &Path, paths: &[PathBuf]) {
    println!("== 2. The same files read with tokio::fs under aio::gather, and joined");
    let reads = paths.iter().map(|path| {
        let path = path.clone();
        async move { Ok::<_, BoxError>(tokio::fs::read_to_string(path).await?) }
    });
    let contents = aio::gather(reads).await.expect("every file is there");
    for (i, t) in contents.iter().enumerate() {
        assert_eq!(t, &text(i));
    }
    let combined = dir.join("combined.txt");
    let mut file = tokio::fs::File::create(&combined)
        .await
        .expect("creating a file");
    file.write_all(contents.join("\n").as_bytes())
        .await
        .expect("writing it");
    // A tokio::fs::File writes in the background: flush before it is dropped.
    file.flush().await.expect("flushing it");
    drop(file);
    let joined = std::fs::read_to_string(&combined).expect("the joined file");
    assert_eq!(
        joined.lines().count(),
        (1..=FILES).sum::<usize>() + FILES - 1
    );
    println!(
        "   joined {} files into {} ({} bytes)",
        contents.len(),
        combined.file_name().unwrap().to_string_lossy(),
        joined.len()
    );

    let missing = dir.join("missing.txt");
    let err = tokio::fs::read_to_string(missing).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    println!("   a missing file: tokio::fs returns the io::Error itself: {err}");
}

async fn count_words_on_a_pool(paths: &[PathBuf]) {
    println!("== 3. Counting words on a ThreadPool(2) with map");
    let set_up = Arc::new(AtomicUsize::new(0));
    let s = Arc::clone(&set_up);
    let pool = ThreadPool::builder()
        .max_workers(2)
        .thread_name_prefix("words")
        .initializer(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let counts: Vec<usize> = pool
        .map(
            |path| {
                let text = std::fs::read_to_string(path).expect("the file is there");
                text.split_whitespace().count()
            },
            paths.to_vec(),
        )
        .map(|count| count.expect("no job panics"))
        .collect()
        .await;
    pool.shutdown(false).await;
    let expected: Vec<usize> = (0..FILES).map(|i| 3 * (i + 1)).collect();
    assert_eq!(counts, expected);
    let threads = set_up.load(Ordering::SeqCst);
    assert!((1..=2).contains(&threads));
    println!("   word counts in file order: {counts:?}");
    println!("   the initializer ran once on each of the pool's {threads} thread(s)");
}

//! Reading files without blocking the runtime: `aio::to_thread` and a `ThreadPool`.
//!
//! 1. Six files in a fresh temporary directory are read at once, each with
//!    `aio::to_thread(move || std::fs::read_to_string(path))` in a task of a group: the
//!    blocking reads run on Tokio's blocking pool, never on the runtime's workers. A file
//!    that is missing is an ordinary `io::Error` inside the `Ok` of `to_thread`: the
//!    function's own result comes back as it was.
//! 2. A `ThreadPool` of two threads, each set up once by an initializer, counts the words
//!    of every file with `pool.map`: lazy, at most two files in flight, results in input
//!    order.
//!
//! The directory is removed at the end, also if something fails.
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
//! with ThreadPoolExecutor(max_workers=2, initializer=setup) as pool:
//!     counts = list(pool.map(count_words, paths, buffersize=2))
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::{BoxError, TaskGroup, ThreadPool};
use futures::StreamExt;

/// How many files the example writes.
const FILES: usize = 6;

/// A directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("aio-read-files-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
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
    let paths: Vec<PathBuf> = (0..FILES)
        .map(|i| {
            let path = dir.path().join(format!("file-{i}.txt"));
            std::fs::write(&path, text(i)).expect("writing a file");
            path
        })
        .collect();
    println!("   wrote {FILES} files in {}", dir.path().display());

    aio::run(async {
        read_at_once(&paths).await;
        count_words_on_a_pool(&paths).await;
    });
    let removed = dir.path().to_owned();
    drop(dir);
    assert!(!removed.exists());
    println!("   removed {}", removed.display());
}

async fn read_at_once(paths: &[PathBuf]) {
    println!("== 1. {FILES} files read at once with aio::to_thread");
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

async fn count_words_on_a_pool(paths: &[PathBuf]) {
    println!("== 2. Counting words on a ThreadPool(2) with map");
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

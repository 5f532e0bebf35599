//! `#[aio::main]` on a whole program: this test is its own binary (no test harness), and its
//! `main` is what users write. `process = registry()` calls `aio::process::init` before any
//! runtime or thread exists, so the pool's workers, which run this same binary, serve the
//! registry instead of running `main`; the body runs in aio's root scope.

use aio::ProcessPool;
use aio_tests::process_fns::{SQUARE, registry};

#[aio::main(flavor = "current_thread", process = registry())]
async fn main() {
    assert!(!aio::process::is_worker());
    let pool = ProcessPool::builder()
        .max_workers(1)
        .build()
        .expect("a pool");
    assert_eq!(pool.submit(&SQUARE, 12).unwrap().await, Ok(144));
    pool.shutdown(true).await;
    let squares = aio::TaskGroup::<aio::BoxError>::scope(|tg| async move {
        let h = tg.spawn(async { Ok(7 * 7) })?;
        Ok(h.await?)
    })
    .await
    .expect("the group");
    assert_eq!(squares, 49);
    println!("#[aio::main] with a process registry: ok");
}

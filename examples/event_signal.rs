//! An event as a starting signal: four runners wait for the starter's "go", `set()`
//! releases them all at once, and `clear()` makes the same event ready for a second heat.
//!
//! 1. Heat 1. The runners line up and `wait()` on the event; none is off before the
//!    starter calls `set()`, and `set()` releases every one of them. The flag stays raised:
//!    a `wait()` on the set event returns at once (polled once, with `now_or_never()`, it
//!    is already done).
//! 2. Heat 2, with the same event and the same runners. The starter first calls `clear()`:
//!    the flag is lowered, and a `wait()` blocks again. Again none is off before `set()`,
//!    and all four are after it.
//!
//! The runners and the starter meet at an `aio::sync::Barrier` between heats: a runner
//! that is off in heat 1 must not wait for heat 2's "go" before the starter has cleared
//! the flag, or it would find it still raised and run straight through.
//!
//! Run it with `cargo run --example event_signal`.
//!
//! It mirrors:
//!
//! ```python
//! go = asyncio.Event()
//!
//! async def runner(name):
//!     for heat in (1, 2):
//!         await lined_up.wait()          # a Barrier(5): the runners and the starter
//!         await go.wait()
//!         print(f"heat {heat}: {name} is off")
//!         await lined_up.wait()
//!
//! async def starter():
//!     for heat in (1, 2):
//!         go.clear()
//!         await lined_up.wait()
//!         go.set()                       # releases every runner
//!         await lined_up.wait()
//! ```

use std::sync::{Arc, Mutex};

use aio::sync::Barrier;
use aio::{BoxError, Event, TaskGroup};
use futures::FutureExt;

const RUNNERS: [&str; 4] = ["ann", "bob", "cy", "dee"];
const HEATS: usize = 2;

/// What happened, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, event: String) {
        println!("   {event}");
        self.0.lock().unwrap().push(event);
    }

    /// The events of heat `heat` that say a runner is off.
    fn off_in(&self, heat: usize) -> Vec<String> {
        let prefix = format!("heat {heat}: ");
        (self.0.lock().unwrap().iter())
            .filter(|e| e.starts_with(&prefix) && e.ends_with("is off"))
            .cloned()
            .collect()
    }
}

pub(crate) fn main() {
    aio::run(async {
        two_heats().await;
    });
}

async fn two_heats() {
    let go = Arc::new(Event::new());
    // The runners and the starter meet here: lined up before a heat, all off after it.
    let lined_up = Arc::new(Barrier::new(RUNNERS.len() + 1));
    let log = Log::default();
    TaskGroup::<BoxError>::scope(|tg| {
        let (go, lined_up, log) = (&go, &lined_up, &log);
        async move {
            for name in RUNNERS {
                let (go, lined_up, log) = (Arc::clone(go), Arc::clone(lined_up), log.clone());
                tg.spawn_named(name, async move {
                    for heat in 1..=HEATS {
                        lined_up.wait().await?;
                        go.wait().await;
                        log.push(format!("heat {heat}: {name} is off"));
                        lined_up.wait().await?;
                    }
                    Ok(())
                })?;
            }

            // The starter.
            for heat in 1..=HEATS {
                println!("== {heat}. heat {heat}");
                if heat > 1 {
                    go.clear();
                    let blocks = go.wait().now_or_never().is_none();
                    println!(
                        "   clear(): is_set() = {}; a wait() now blocks: {blocks}",
                        go.is_set()
                    );
                    assert!(!go.is_set() && blocks);
                }
                lined_up.wait().await?;
                // The runners are at the line, waiting or about to: none can be off yet.
                let early = log.off_in(heat);
                println!(
                    "   the runners are lined up; is_set() = {}, off before set(): {}",
                    go.is_set(),
                    early.len()
                );
                assert!(!go.is_set() && early.is_empty());
                println!("   set()");
                go.set();
                lined_up.wait().await?;
                let off = log.off_in(heat);
                assert_eq!(off.len(), RUNNERS.len(), "{off:?}");
                // The flag stays raised: a wait() returns at once, without blocking.
                let at_once = go.wait().now_or_never().is_some();
                println!(
                    "   all {} runners are off; is_set() = {}, a late wait() returns at once: \
                     {at_once}",
                    off.len(),
                    go.is_set()
                );
                assert!(go.is_set() && at_once);
            }
            Ok(())
        }
    })
    .await
    .expect("no runner fails");
}

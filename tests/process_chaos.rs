//! The chaos tests: thousands of tasks while workers are killed at random. Every task ends
//! exactly once, with its right result or `WorkerCrashed`; no task runs twice, whatever
//! was sent ahead to a worker that died; nothing hangs; no process is left behind.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aio::process::ProcessError;
use aio_tests::process_fns::*;

use crate::process_support::*;

/// A small xorshift generator: enough randomness to pick victims and pauses.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Rng(nanos | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const TASKS: u64 = 10_000;

/// Kills a random worker of `pool` every few milliseconds until `done`; returns the pids
/// it killed, and adds every pid it saw to `seen`.
fn killer(
    pool: Arc<aio::ProcessPool>,
    done: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<u32>>>,
) -> std::thread::JoinHandle<Vec<u32>> {
    std::thread::spawn(move || {
        let mut rng = Rng::seeded();
        let mut killed = Vec::new();
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1 + rng.below(15)));
            let pids = pool.worker_pids();
            seen.lock().unwrap().extend(pids.iter().copied());
            if pids.is_empty() {
                continue;
            }
            let victim = pids[rng.below(pids.len() as u64) as usize];
            let status = std::process::Command::new("kill")
                .args(["-9", &victim.to_string()])
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                killed.push(victim);
            }
        }
        killed
    })
}

#[test]
fn chaos_every_task_ends_exactly_once_while_workers_are_killed() {
    run(async {
        let pool = Arc::new(pool().max_workers(2).build().unwrap());
        let handles: Vec<_> = (0..TASKS)
            .map(|x| pool.submit(&SQUARE, x).unwrap())
            .collect();

        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let killer = killer(Arc::clone(&pool), Arc::clone(&done), Arc::clone(&seen));

        let (mut ok, mut crashed) = (0u64, 0u64);
        for (x, h) in handles.into_iter().enumerate() {
            match h.await {
                Ok(v) => {
                    assert_eq!(v, x as u64 * x as u64, "task {x} has another's result");
                    ok += 1;
                }
                Err(ProcessError::WorkerCrashed(c)) => {
                    assert_eq!(c.exit.signal, Some(9), "{c}");
                    seen.lock().unwrap().insert(c.pid);
                    crashed += 1;
                }
                Err(e) => panic!("task {x} ended with {e}"),
            }
        }
        done.store(true, Ordering::SeqCst);
        let killed = killer.join().unwrap();
        let kills = killed.len() as u32;
        assert_eq!(ok + crashed, TASKS);
        assert!(kills > 0, "the killer never struck");
        assert!(
            crashed <= u64::from(kills),
            "{crashed} crashes from {kills} kills"
        );
        assert!(pool.broken().is_none());
        // The last kill may still be landing after the killer stopped: wait until every
        // victim is dead (gone, or a zombie not yet reaped), on any machine.
        while killed
            .iter()
            .any(|&pid| proc_state(pid).is_some_and(|(state, _)| state != 'Z'))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Once the pool has noticed the last kills (no worker of its is dead), it works
        // as before, and leaves nothing behind.
        while pool
            .worker_pids()
            .iter()
            .any(|&pid| proc_state(pid).is_none_or(|(state, _)| state == 'Z'))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(pool.submit(&SQUARE, 7).unwrap().await, Ok(49));
        seen.lock().unwrap().extend(pool.worker_pids());
        pool.shutdown(false).await;
        let seen: Vec<u32> = seen.lock().unwrap().iter().copied().collect();
        assert_reaped(&seen);
        eprintln!("chaos: {TASKS} tasks, {kills} kills, {crashed} crashed, {ok} ok");
    });
}

#[test]
fn chaos_no_task_runs_twice_while_workers_are_killed_and_tasks_cancelled() {
    run(async {
        let pool = Arc::new(pool().max_workers(2).build().unwrap());
        let record = marker("record");
        std::fs::create_dir(&record).unwrap();
        let path = record.display().to_string();
        let done = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let killer = killer(Arc::clone(&pool), Arc::clone(&done), Arc::clone(&seen));

        let mut rng = Rng::seeded();
        let mut kept = Vec::new();
        for round in 0..100u64 {
            let mut handles: Vec<_> = (0..200)
                .map(|i| {
                    let x = round * 200 + i;
                    (x, pool.submit(&RECORD, (path.clone(), x)).unwrap())
                })
                .collect();
            // Some are cancelled while queued, some once sent ahead, some while running.
            tokio::task::yield_now().await;
            handles.retain(|_| rng.below(8) != 0);
            kept.extend(handles);
        }
        let mut answered = BTreeSet::new();
        for (x, handle) in kept {
            match handle.await {
                Ok(v) => {
                    assert_eq!(v, x);
                    answered.insert(x);
                }
                Err(ProcessError::WorkerCrashed(c)) => assert_eq!(c.exit.signal, Some(9), "{c}"),
                Err(e) => panic!("task {x} ended with {e}"),
            }
        }
        done.store(true, Ordering::SeqCst);
        let killed = killer.join().unwrap();
        assert!(!killed.is_empty(), "the killer never struck");

        // Each run as `x-pid`: which workers ran a task that ran twice.
        let mut runs = std::collections::BTreeMap::<u64, Vec<String>>::new();
        for entry in std::fs::read_dir(&record).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let (x, pid) = name.split_once('-').unwrap();
            runs.entry(x.parse().unwrap())
                .or_default()
                .push(pid.to_owned());
        }
        let twice: Vec<_> = runs.iter().filter(|(_, pids)| pids.len() > 1).collect();
        assert!(
            twice.is_empty(),
            "tasks that ran more than once, on: {twice:?}"
        );
        for x in &answered {
            assert!(
                runs.contains_key(x),
                "task {x} was answered but never ran; the runs around it: {:?}; killed: {killed:?}",
                runs.range(x.saturating_sub(3)..x + 4).collect::<Vec<_>>()
            );
        }
        while killed
            .iter()
            .any(|&pid| proc_state(pid).is_some_and(|(state, _)| state != 'Z'))
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pool.shutdown(false).await;
        let seen: Vec<u32> = seen.lock().unwrap().iter().copied().collect();
        assert_reaped(&seen);
        std::fs::remove_dir_all(&record).unwrap();
        eprintln!(
            "chaos: {} answered, {} kills, {} runs recorded",
            answered.len(),
            killed.len(),
            runs.len()
        );
    });
}

//! `Barrier` (§12): asyncio's cyclic barrier with `abort` and `reset`, and a `wait` that is
//! cancel safe. The poll-level tests drive each `wait` by hand with tokio-test, so that the
//! phases in between (filling, draining, resetting) can be looked at; the `spec!` tests run
//! real tasks on both runtimes.

use std::sync::Arc;

use aio::sync::{Barrier, BrokenBarrierError};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready, assert_ready_eq};

use crate::support::*;

fn phase(barrier: &Barrier) -> String {
    format!("{barrier:?}")
}

#[test]
#[should_panic(expected = "at least one party")]
fn barrier_of_no_parties_is_refused_12_1() {
    let _ = Barrier::new(0);
}

#[test]
fn barrier_returns_distinct_indices_in_arrival_order_12_3() {
    let barrier = Barrier::new(3);
    let mut first = spawn(barrier.wait());
    let mut second = spawn(barrier.wait());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    let mut third = spawn(barrier.wait());
    assert_ready_eq!(third.poll(), Ok(2));
    assert!(first.is_woken() && second.is_woken());
    assert_ready_eq!(first.poll(), Ok(0));
    assert_ready_eq!(second.poll(), Ok(1));
}

#[test]
fn barrier_of_one_passes_every_wait_12_4() {
    let barrier = Barrier::new(1);
    for _ in 0..3 {
        assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(0));
        assert_eq!(barrier.n_waiting(), 0);
    }
}

#[test]
fn barrier_counts_waiting_tasks_while_filling_12_5() {
    let barrier = Barrier::new(3);
    assert_eq!(barrier.n_waiting(), 0);
    let mut first = spawn(barrier.wait());
    assert_pending!(first.poll());
    assert_eq!(barrier.n_waiting(), 1);
    let mut second = spawn(barrier.wait());
    assert_pending!(second.poll());
    assert_eq!(barrier.n_waiting(), 2);
    assert!(phase(&barrier).contains("waiters: 2/3"));
    assert_ready!(spawn(barrier.wait()).poll()).unwrap();
    // Draining: nobody waits for it to fill.
    assert_eq!(barrier.n_waiting(), 0);
}

#[test]
fn barrier_drains_then_fills_again_12_7() {
    let barrier = Barrier::new(2);
    let mut first = spawn(barrier.wait());
    assert_pending!(first.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert!(phase(&barrier).contains("draining"));
    // The last released task to leave finds it filling.
    assert_ready_eq!(first.poll(), Ok(0));
    assert!(phase(&barrier).contains("filling"));
}

#[test]
fn barrier_arrivals_while_draining_wait_for_the_next_cycle_12_8() {
    let barrier = Barrier::new(2);
    let mut first = spawn(barrier.wait());
    assert_pending!(first.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    // `first` is released but has not left: a newcomer must not join this cycle.
    let mut next_a = spawn(barrier.wait());
    let mut next_b = spawn(barrier.wait());
    assert_pending!(next_a.poll());
    assert_pending!(next_b.poll());
    assert_eq!(barrier.n_waiting(), 0);
    assert_ready_eq!(first.poll(), Ok(0));
    // Now the newcomers make the next cycle, in the order they came.
    assert!(next_a.is_woken() && next_b.is_woken());
    assert_ready_eq!(next_b.poll(), Ok(1));
    assert_ready_eq!(next_a.poll(), Ok(0));
}

#[test]
fn barrier_tasks_at_the_gate_are_not_overtaken_by_later_arrivals_a8() {
    let barrier = Barrier::new(2);
    let mut released = spawn(barrier.wait());
    assert_pending!(released.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    let mut early = spawn(barrier.wait());
    assert_pending!(early.poll()); // at the gate while the barrier drains
    assert_ready_eq!(released.poll(), Ok(0));
    // The gate is open, but `early` has not run yet; two tasks come along meanwhile.
    let mut late = spawn(barrier.wait());
    let mut later = spawn(barrier.wait());
    assert_ready_eq!(late.poll(), Ok(1)); // it completes the cycle `early` is in
    assert_pending!(later.poll()); // the barrier drains: it waits for the next one
    assert_ready_eq!(early.poll(), Ok(0));
    // Drained: `later` is counted in for the next cycle, ahead of anyone who comes now.
    assert_eq!(barrier.n_waiting(), 1);
    let mut last = spawn(barrier.wait());
    assert!(later.is_woken());
    assert_ready_eq!(last.poll(), Ok(1));
    assert_ready_eq!(later.poll(), Ok(0));
}

#[test]
fn barrier_task_counted_in_at_the_gate_then_dropped_is_undone_12_9() {
    let barrier = Barrier::new(3);
    let mut a = spawn(barrier.wait());
    let mut b = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(2));
    let mut gated = spawn(barrier.wait());
    assert_pending!(gated.poll());
    assert_ready_eq!(a.poll(), Ok(0));
    assert_ready_eq!(b.poll(), Ok(1));
    // The gate opened and counted `gated` in; it is dropped before it ran.
    assert_eq!(barrier.n_waiting(), 1);
    drop(gated);
    assert_eq!(barrier.n_waiting(), 0);
    let mut x = spawn(barrier.wait());
    let mut y = spawn(barrier.wait());
    assert_pending!(x.poll());
    assert_pending!(y.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(2));
}

#[test]
fn barrier_cancelled_arrival_is_undone_and_does_not_break_it_12_9() {
    let barrier = Barrier::new(3);
    let mut first = spawn(barrier.wait());
    assert_pending!(first.poll());
    let mut cancelled = spawn(barrier.wait());
    assert_pending!(cancelled.poll());
    assert_eq!(barrier.n_waiting(), 2);
    drop(cancelled);
    assert_eq!(barrier.n_waiting(), 1);
    assert!(!barrier.is_broken());
    // Two more parties are needed, not one.
    let mut second = spawn(barrier.wait());
    assert_pending!(second.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(2));
    assert_ready_eq!(first.poll(), Ok(0));
    assert_ready_eq!(second.poll(), Ok(1));
}

#[test]
fn barrier_task_dropped_after_release_counts_as_gone_a8() {
    let barrier = Barrier::new(2);
    let mut released = spawn(barrier.wait());
    assert_pending!(released.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert!(phase(&barrier).contains("draining"));
    // Released, then cancelled before it ran: it leaves, and the barrier fills again.
    drop(released);
    assert!(phase(&barrier).contains("filling"));
    let mut a = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert_ready_eq!(a.poll(), Ok(0));
}

#[test]
fn barrier_reset_breaks_the_waiters_and_stays_usable_12_10() {
    let barrier = Barrier::new(3);
    let mut a = spawn(barrier.wait());
    let mut b = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    barrier.reset();
    assert!(phase(&barrier).contains("resetting"));
    assert_ready_eq!(a.poll(), Err(BrokenBarrierError));
    assert_ready_eq!(b.poll(), Err(BrokenBarrierError));
    assert!(!barrier.is_broken());
    assert!(phase(&barrier).contains("filling"));
    // 12.13: the same tasks can wait again and complete a cycle.
    let mut a = spawn(barrier.wait());
    let mut b = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(2));
    assert_ready_eq!(a.poll(), Ok(0));
    assert_ready_eq!(b.poll(), Ok(1));
}

#[test]
fn barrier_reset_when_idle_does_nothing_12_11() {
    let barrier = Barrier::new(2);
    barrier.reset();
    assert!(phase(&barrier).contains("filling"));
    assert!(!barrier.is_broken());
    let mut a = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert_ready_eq!(a.poll(), Ok(0));
}

#[test]
fn barrier_reset_while_draining_spares_the_released_tasks_12_12() {
    let barrier = Barrier::new(2);
    let mut released = spawn(barrier.wait());
    assert_pending!(released.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    // Half drained: one released task has not left; a newcomer waits at the gate.
    let mut blocked = spawn(barrier.wait());
    assert_pending!(blocked.poll());
    barrier.reset();
    assert_ready_eq!(released.poll(), Ok(0));
    // The barrier is filling again; the newcomer joins the new cycle, unbroken.
    assert!(blocked.is_woken());
    assert_pending!(blocked.poll());
    assert_eq!(barrier.n_waiting(), 1);
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert_ready_eq!(blocked.poll(), Ok(0));
}

#[test]
fn barrier_abort_breaks_current_and_future_waiters_12_14() {
    let barrier = Barrier::new(3);
    let mut a = spawn(barrier.wait());
    assert_pending!(a.poll());
    barrier.abort();
    assert!(barrier.is_broken());
    assert!(phase(&barrier).contains("broken"));
    assert_ready_eq!(a.poll(), Err(BrokenBarrierError));
    assert_ready_eq!(spawn(barrier.wait()).poll(), Err(BrokenBarrierError));
    assert_eq!(barrier.n_waiting(), 0);
}

#[test]
fn barrier_abort_while_draining_spares_the_released_tasks_12_14() {
    let barrier = Barrier::new(2);
    let mut released = spawn(barrier.wait());
    assert_pending!(released.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    let mut blocked = spawn(barrier.wait());
    assert_pending!(blocked.poll());
    barrier.abort();
    assert_ready_eq!(released.poll(), Ok(0));
    assert_ready_eq!(blocked.poll(), Err(BrokenBarrierError));
    assert!(barrier.is_broken());
}

#[test]
fn barrier_reset_after_abort_restores_it_12_16() {
    let barrier = Barrier::new(2);
    let mut a = spawn(barrier.wait());
    assert_pending!(a.poll());
    barrier.abort();
    assert_ready_eq!(a.poll(), Err(BrokenBarrierError));
    barrier.reset();
    assert!(!barrier.is_broken());
    let mut a = spawn(barrier.wait());
    assert_pending!(a.poll());
    assert_ready_eq!(spawn(barrier.wait()).poll(), Ok(1));
    assert_ready_eq!(a.poll(), Ok(0));
}

spec! {
    /// §12.6: the same parties pass the same barrier cycle after cycle.
    async fn barrier_is_cyclic_12_6() {
        let barrier = Arc::new(Barrier::new(3));
        let log = Log::new();
        let tasks: Vec<_> = (0..3)
            .map(|party| {
                let (barrier, log) = (Arc::clone(&barrier), log.clone());
                tokio::spawn(async move {
                    let mut indices = Vec::new();
                    for round in 0..4 {
                        log.push(format!("round {round}: party {party} arrives"));
                        indices.push(barrier.wait().await.unwrap());
                    }
                    indices
                })
            })
            .collect();
        let mut by_round = vec![Vec::new(); 4];
        for task in tasks {
            for (round, index) in task.await.unwrap().into_iter().enumerate() {
                by_round[round].push(index);
            }
        }
        for mut indices in by_round {
            indices.sort_unstable();
            assert_eq!(indices, [0, 1, 2]);
        }
        // Nobody arrived for round r + 1 before everyone had arrived for round r.
        let events = log.events();
        for round in 0..3 {
            let last_of_round = events
                .iter()
                .rposition(|e| e.starts_with(&format!("round {round}:")))
                .unwrap();
            let first_of_next = events
                .iter()
                .position(|e| e.starts_with(&format!("round {}:", round + 1)))
                .unwrap();
            assert!(last_of_round < first_of_next, "{events:?}");
        }
    }
}

spec! {
    /// §12.15: one party fails, aborts the barrier, and the others get
    /// `BrokenBarrierError` instead of waiting forever.
    async fn barrier_abort_on_failure_releases_the_others_12_15() {
        let barrier = Arc::new(Barrier::new(4));
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move { barrier.wait().await })
            })
            .collect();
        while barrier.n_waiting() < 3 {
            tokio::task::yield_now().await;
        }
        // The fourth party hits an error before it reaches the barrier.
        barrier.abort();
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), Err(BrokenBarrierError));
        }
    }
}

spec! {
    /// A cancel-at-every-await sweep: a party's `wait` is cut short by a timeout after
    /// 0, 10, 20, ... ms while the others arrive over time. Whenever the cut comes, the
    /// barrier still trips for the parties that stay, and is never broken. (A cut that
    /// lands as the barrier trips leaves the quitter counted in, its pass lost as in
    /// asyncio: in real time that can happen at any cut near an arrival.)
    async fn barrier_wait_is_cancel_safe_at_every_point_a8() {
        for cut in (0..=40).step_by(10) {
            let barrier = Arc::new(Barrier::new(3));
            let quitter = {
                let barrier = Arc::clone(&barrier);
                tokio::spawn(async move { aio::timeout(ms(cut), barrier.wait()).await })
            };
            let stayers: Vec<_> = (1..=2)
                .map(|i| {
                    let barrier = Arc::clone(&barrier);
                    tokio::spawn(async move {
                        tokio::time::sleep(ms(15 * i)).await;
                        barrier.wait().await
                    })
                })
                .collect();
            let quit = quitter.await.unwrap();
            // The quitter left before the barrier filled if both stayers end up waiting for
            // a third party; it was counted in the trip if they get through without one.
            let left_early = quit.is_err() && {
                let through = || stayers.iter().all(|s| s.is_finished());
                eventually(std::time::Duration::from_secs(10), || {
                    through() || barrier.n_waiting() == 2
                })
                .await;
                !through()
            };
            if left_early {
                let late = Arc::clone(&barrier);
                let late = tokio::spawn(async move { late.wait().await });
                let mut indices = vec![late.await.unwrap().unwrap()];
                for stayer in stayers {
                    indices.push(stayer.await.unwrap().unwrap());
                }
                indices.sort_unstable();
                assert_eq!(indices, [0, 1, 2], "cut at {cut} ms");
            } else {
                for stayer in stayers {
                    stayer.await.unwrap().unwrap();
                }
            }
            assert!(!barrier.is_broken());
            assert_eq!(barrier.n_waiting(), 0, "cut at {cut} ms");
        }
    }
}

//! A real HTTP server on loopback for the examples that fetch: an axum router served on
//! `127.0.0.1:0` by a task of a group, and a reqwest client that goes straight to it.
//!
//! Each example writes its own routes (`fn routes(stats: Stats) -> Router`); this file
//! serves them the way `examples/web_service.rs` does, and counts what the server saw:
//! requests in its handlers, the most at once, the ones answered, and the ones whose client
//! hung up before the answer. Nothing leaves the machine.

// Each example uses part of this file.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, Event, TaskGroup, shield};
use axum::Router;
use tokio::net::TcpListener;
use tokio::time::sleep;

/// The server as the example's code sees it: a client, the base URL, and the server's
/// counts.
#[derive(Clone)]
pub(crate) struct Site {
    pub(crate) client: reqwest::Client,
    base: String,
    pub(crate) stats: Stats,
}

impl Site {
    /// The full URL of `path` on the server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Serves the router that `routes` builds on a loopback port while `body` runs, then shuts
/// the server down gracefully and returns what `body` returned.
///
/// The server is a task of a group, shielded so that the group's cancellation does not drop
/// it mid-drain; when `body` is done the group is cancelled, the server stops accepting,
/// answers what is in flight, and only then does this return.
pub(crate) async fn with_server<T, Fut>(
    routes: impl FnOnce(Stats) -> Router,
    body: impl FnOnce(Site) -> Fut,
) -> T
where
    Fut: Future<Output = T>,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let stats = Stats::default();
    let router = routes(stats.clone());
    let site = Site {
        // Straight to the loopback server, whatever proxy the environment names.
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client"),
        base: format!("http://{}", listener.local_addr().expect("a bound address")),
        stats,
    };
    TaskGroup::<BoxError>::builder()
        .name("loopback server")
        .scope(|tg| async move {
            let stop = Arc::new(Event::new());
            let signal = Arc::clone(&stop);
            tg.spawn_named("server", async move {
                let server = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { signal.wait().await });
                shield(async move { server.await }).await?;
                Ok(())
            })?;
            tg.spawn_named("shutdown", async move {
                aio::cancelled().await;
                stop.set();
                Ok(())
            })?;
            let out = body(site).await;
            tg.cancel();
            Ok(out)
        })
        .await
        .expect("the server ran and stopped")
}

/// What a server saw, counted by its handlers.
#[derive(Clone, Default)]
pub(crate) struct Stats(Arc<Counts>);

#[derive(Default)]
struct Counts {
    in_handlers: AtomicUsize,
    most: AtomicUsize,
    answered: Mutex<Vec<String>>,
    hung_up: Mutex<Vec<String>>,
}

impl Stats {
    /// A handler starts on `path`. Call [`Handling::answered`] when it answers; a handler
    /// dropped before that was dropped by the server because its client hung up.
    pub(crate) fn enter(&self, path: impl Into<String>) -> Handling {
        let now = self.0.in_handlers.fetch_add(1, Ordering::SeqCst) + 1;
        self.0.most.fetch_max(now, Ordering::SeqCst);
        Handling {
            stats: self.clone(),
            path: Some(path.into()),
        }
    }

    /// Requests in a handler now.
    pub(crate) fn in_handlers(&self) -> usize {
        self.0.in_handlers.load(Ordering::SeqCst)
    }

    /// The most requests that were ever in a handler at once.
    pub(crate) fn most(&self) -> usize {
        self.0.most.load(Ordering::SeqCst)
    }

    /// The paths answered so far, shortest first then alphabetically (so `/item/9` comes
    /// before `/item/10`), and forgotten: the next call starts afresh.
    pub(crate) fn take_answered(&self) -> Vec<String> {
        let mut answered = std::mem::take(&mut *self.0.answered.lock().unwrap());
        answered.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        answered
    }

    /// The paths whose client hung up before the answer, in the same order, and forgotten.
    pub(crate) fn take_hung_up(&self) -> Vec<String> {
        let mut hung_up = std::mem::take(&mut *self.0.hung_up.lock().unwrap());
        hung_up.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        hung_up
    }

    /// Starts counting the most requests at once afresh.
    pub(crate) fn reset_most(&self) {
        self.0.most.store(self.in_handlers(), Ordering::SeqCst);
    }

    /// Waits until no request is in a handler: the server has answered every request, or
    /// seen its client hang up. For 10 s at most, which only a broken example needs.
    pub(crate) async fn idle(&self) {
        let idle = async {
            while self.in_handlers() > 0 {
                sleep(Duration::from_millis(2)).await;
            }
        };
        aio::timeout(Duration::from_secs(10), idle)
            .await
            .expect("the server sees every request end");
    }
}

/// A request in a handler; see [`Stats::enter`].
pub(crate) struct Handling {
    stats: Stats,
    /// `None` once answered.
    path: Option<String>,
}

impl Handling {
    /// The handler answers.
    pub(crate) fn answered(mut self) {
        let path = self.path.take().expect("answered once");
        self.stats.0.answered.lock().unwrap().push(path);
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.stats.0.in_handlers.fetch_sub(1, Ordering::SeqCst);
        if let Some(path) = self.path.take() {
            self.stats.0.hung_up.lock().unwrap().push(path);
        }
    }
}

//! A web service on aio: a real axum server and a real reqwest client, on loopback.
//!
//! 1. A handler fans out to three backend calls inside its own task
//!    (`aio::in_task::gather`), borrowing the request, under a deadline: the client gets the
//!    three answers, or a 504 when the deadline passes.
//! 2. A client that hangs up mid-request: hyper drops the handler's future, and with it the
//!    `gather` group the handler was waiting on. The group's tasks are cancelled, their
//!    `on_cancel` cleanup runs in the background, and nothing is logged above DEBUG.
//! 3. A graceful shutdown: the server runs as a task of a group, shielded, and stops when the
//!    group is cancelled; the request in flight completes and its cleanup is awaited before
//!    the group returns.
//!
//! Run it with `cargo run --example web_service`.
//!
//! It mirrors (FastAPI and httpx):
//!
//! ```python
//! @app.get("/profile/{user}")
//! async def profile(user: int):
//!     async with asyncio.timeout(1):
//!         name, orders, recs = await asyncio.gather(db.name(user), db.orders(user), recs(user))
//!     return {"name": name, "orders": orders, "recs": recs}
//!
//! async with httpx.AsyncClient() as client:
//!     r = await client.get(f"{base}/profile/7")
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, Event, TaskGroup, in_task, on_cancel, shield, timeout};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the handlers share: a log of what happened, for the example's own checks.
#[derive(Clone, Default)]
struct App {
    log: Arc<Mutex<Vec<String>>>,
}

impl App {
    fn note(&self, event: impl Into<String>) {
        self.log.lock().unwrap().push(event.into());
    }

    fn saw(&self, event: &str) -> bool {
        self.log.lock().unwrap().iter().any(|e| e == event)
    }
}

/// A backend call: `what` for `user`, answering after `takes`.
async fn backend(what: &str, user: u32, takes: Duration) -> Result<String, BoxError> {
    sleep(takes).await;
    Ok(format!("{what}({user})"))
}

/// `GET /profile/{user}`: three backend calls at once, in the handler's task, within a
/// second. User 13's orders take too long.
async fn profile(Path(user): Path<u32>) -> Result<String, StatusCode> {
    let orders_take = if user == 13 { ms(5_000) } else { ms(20) };
    let user_ref = &user; // borrowed by every call: nothing is 'static
    let calls = in_task::gather((
        backend("name", *user_ref, ms(10)),
        backend("orders", *user_ref, orders_take),
        backend("recommendations", *user_ref, ms(15)),
    ));
    match timeout(ms(1_000), calls).await {
        Ok(Ok((name, orders, recs))) => Ok(format!("{name} {orders} {recs}")),
        Ok(Err(_)) => Err(StatusCode::BAD_GATEWAY),
        Err(_elapsed) => Err(StatusCode::GATEWAY_TIMEOUT),
    }
}

/// `GET /report`: a slow fan-out as tasks of a group (`aio::gather`), each holding a
/// connection it must give back if it is cancelled.
async fn report(State(app): State<App>) -> Result<String, StatusCode> {
    let parts = (1..=3).map(|part| {
        let (app, started) = (app.clone(), app.clone());
        on_cancel(
            async move {
                started.note(format!("report part {part} started"));
                sleep(Duration::from_secs(5)).await;
                Ok::<_, BoxError>(format!("part {part}"))
            },
            move |_| async move {
                sleep(ms(5)).await; // give the connection back
                app.note(format!("report part {part} cleaned up"));
                Ok(())
            },
        )
    });
    let parts = aio::gather(parts)
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(parts.join(", "))
}

/// `GET /slow`: a request that is in flight when the server shuts down.
async fn slow(State(app): State<App>) -> String {
    app.note("slow request started");
    sleep(ms(50)).await;
    app.note("slow request finished");
    "done".into()
}

/// Counts the events aio logs while the example runs: at DEBUG, and above.
#[derive(Clone, Default)]
struct AioEvents {
    debug: Arc<AtomicUsize>,
    louder: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AioEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("aio") {
            return;
        }
        if *meta.level() < tracing::Level::DEBUG {
            eprintln!("   aio logged: {} {:?}", meta.level(), event);
            self.louder.fetch_add(1, Ordering::SeqCst);
        } else if *meta.level() == tracing::Level::DEBUG {
            self.debug.fetch_add(1, Ordering::SeqCst);
        }
    }
}

pub(crate) fn main() {
    use tracing_subscriber::layer::SubscriberExt;

    let events = AioEvents::default();
    let subscriber = tracing_subscriber::registry().with(events.clone());
    // One thread, so that the subscriber set here sees every event of the runtime.
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.enable_all();
    tracing::subscriber::with_default(subscriber, || {
        aio::run_with(&mut runtime, serve_and_call()).expect("the runtime starts")
    });
    let (debug, louder) = (
        events.debug.load(Ordering::SeqCst),
        events.louder.load(Ordering::SeqCst),
    );
    println!("   aio logged {debug} event(s) at DEBUG (the reaped group) and {louder} above");
    assert!(debug >= 1);
    assert_eq!(louder, 0);
}

async fn serve_and_call() {
    let app = App::default();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = Router::new()
        .route("/profile/{user}", get(profile))
        .route("/report", get(report))
        .route("/slow", get(slow))
        .with_state(app.clone());
    // Straight to the loopback server, whatever proxy the environment names.
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("a client");

    let checked = app.clone();
    let in_flight = TaskGroup::<BoxError>::builder()
        .name("web service")
        .scope(|tg| async move {
            // The server: axum spawns a Tokio task per connection, outside aio. It runs
            // shielded, so that cancelling the group does not drop it mid-drain, and stops
            // gracefully when `stop` is set: it finishes the requests in flight first.
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

            println!("== 1. a handler fans out to three backends under a deadline");
            let body = get_text(&client, &format!("{base}/profile/7")).await?;
            println!("   GET /profile/7 -> {body}");
            assert_eq!(body, "name(7) orders(7) recommendations(7)");
            let status = client
                .get(format!("{base}/profile/13"))
                .send()
                .await?
                .status();
            println!("   GET /profile/13 -> {status} (its orders call outlived the deadline)");
            assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);

            println!("== 2. a client hangs up mid-request");
            let request = tokio::spawn(client.get(format!("{base}/report")).send());
            let parts_started = (1..=3).map(|p| format!("report part {p} started"));
            until(&app, &parts_started.collect::<Vec<_>>()).await?;
            // The client gives up: its connection closes, and hyper drops the handler.
            request.abort();
            println!("   the client hung up while the handler's three parts were running");
            let parts_cleaned = (1..=3).map(|p| format!("report part {p} cleaned up"));
            until(&app, &parts_cleaned.collect::<Vec<_>>()).await?;
            println!("   the handler's gather group was reaped: every part cleaned up");

            println!("== 3. a graceful shutdown with a request in flight");
            let in_flight = tokio::spawn({
                let client = client.clone();
                let url = format!("{base}/slow");
                async move { get_text(&client, &url).await }
            });
            until(&app, &["slow request started".into()]).await?;
            tg.cancel(); // Ctrl-C, say
            Ok(in_flight)
        })
        .await
        .expect("the service ran");
    // The group returned once the server had answered the request in flight and stopped.
    assert!(checked.saw("slow request finished"));
    let answer = in_flight
        .await
        .expect("the client task")
        .expect("an answer");
    println!("   the in-flight request was answered before the group returned: {answer}");
    assert_eq!(answer, "done");
}

/// Waits until `app` has seen every one of `events`, for 10 s at most.
async fn until(app: &App, events: &[String]) -> Result<(), BoxError> {
    let seen = async {
        while !events.iter().all(|e| app.saw(e)) {
            sleep(ms(2)).await;
        }
    };
    Ok(timeout(Duration::from_secs(10), seen).await?)
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, BoxError> {
    Ok(client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

//! What aio tells `tracing`: a span per group and per task, and reports from the reaper of a
//! dropped group.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aio::{BoxError, TaskGroup};
use tokio::time::sleep;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

use crate::support::*;

/// Something `tracing` reported: a span or an event, with its fields.
#[derive(Debug, Clone)]
struct Reported {
    name: String,
    fields: Vec<(String, String)>,
}

impl Reported {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Default)]
struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .push((field.name().to_string(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }
}

/// A subscriber that records every span and event.
#[derive(Default)]
struct Recorder {
    spans: Mutex<Vec<Reported>>,
    events: Mutex<Vec<Reported>>,
    next_id: AtomicU64,
}

impl Subscriber for &'static Recorder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let level = attrs.metadata().level().to_string();
        fields.0.push(("level".to_string(), level));
        self.spans.lock().unwrap().push(Reported {
            name: attrs.metadata().name().to_string(),
            fields: fields.0,
        });
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.events.lock().unwrap().push(Reported {
            name: event.metadata().level().to_string(),
            fields: fields.0,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `body` on a paused current-thread runtime with `recorder` as the subscriber.
///
/// One at a time: the span level `body` may set is global, and `tracing`'s caches of which
/// subscribers want which call site are process-wide.
fn recorded(body: impl std::future::Future<Output = ()>) -> &'static Recorder {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let recorder: &'static Recorder = Box::leak(Box::default());
    tracing::subscriber::with_default(recorder, || run_current_thread(body));
    recorder
}

#[test]
fn every_group_and_every_task_has_a_span() {
    let recorder = recorded(async {
        TaskGroup::<BoxError>::builder()
            .name("fetchers")
            .scope(|tg| async move {
                tg.spawn_named("fetch-1", async { Ok(()) })?;
                tg.spawn(async { Ok(()) })?;
                Ok(())
            })
            .await
            .unwrap();
    });
    let spans = recorder.spans.lock().unwrap().clone();
    let group = spans.iter().find(|s| s.name == "aio.task_group").unwrap();
    assert_eq!(group.field("group.name"), Some("fetchers"));
    assert!(group.field("group.id").unwrap().starts_with("scope#"));
    let tasks: Vec<_> = spans.iter().filter(|s| s.name == "aio.task").collect();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0].field("task.name"), Some("fetch-1"));
    assert!(
        tasks
            .iter()
            .all(|t| t.field("task.id").unwrap().starts_with("task#"))
    );
}

/// A local group's task has the span of any group's task, under its group's.
#[test]
fn a_local_task_has_a_span_like_any_task() {
    let recorder = recorded(async {
        aio::LocalGroup::<BoxError>::scope_named(
            "borrowers",
            Default::default(),
            |lg| async move {
                lg.spawn_named("borrower", async { Ok(()) })?;
                Ok(())
            },
        )
        .await
        .unwrap();
    });
    let spans = recorder.spans.lock().unwrap().clone();
    let group = spans.iter().find(|s| s.name == "aio.task_group").unwrap();
    assert_eq!(group.field("group.name"), Some("borrowers"));
    let task = spans.iter().find(|s| s.name == "aio.task").unwrap();
    assert_eq!(task.field("task.name"), Some("borrower"));
    assert!(task.field("task.id").unwrap().starts_with("task#"));
}

/// Ids are written one way everywhere: a span's `group.id` and `task.id` are what
/// `ScopeId` and `TaskId` display, as in `task_tree()`, warnings and errors.
#[test]
fn span_ids_are_written_as_everywhere_else() {
    let ids = Log::new();
    let i = ids.clone();
    let recorder = recorded(async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let h = tg.spawn(async { Ok(()) })?;
            i.push(tg.id().to_string());
            i.push(h.id().to_string());
            Ok(())
        })
        .await
        .unwrap();
    });
    let spans = recorder.spans.lock().unwrap().clone();
    let group = spans.iter().find(|s| s.name == "aio.task_group").unwrap();
    let task = spans.iter().find(|s| s.name == "aio.task").unwrap();
    let ids = ids.events();
    assert_eq!(group.field("group.id"), Some(ids[0].as_str()));
    assert_eq!(task.field("task.id"), Some(ids[1].as_str()));
}

/// Spans are DEBUG unless `set_span_level` says otherwise, so that the usual INFO filter
/// can show every task's name.
#[test]
fn set_span_level_chooses_the_level_of_aios_spans() {
    let levels = |level| {
        let recorder = recorded(async move {
            aio::set_span_level(level);
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async { Ok(()) })?;
                Ok(())
            })
            .await
            .unwrap();
            aio::set_span_level(tracing::Level::DEBUG);
        });
        let spans = recorder.spans.lock().unwrap().clone();
        spans
            .iter()
            .filter(|s| s.name.starts_with("aio."))
            .map(|s| s.field("level").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(levels(tracing::Level::INFO), ["INFO", "INFO"]);
    assert_eq!(levels(tracing::Level::DEBUG), ["DEBUG", "DEBUG"]);
}

#[test]
fn a_dropped_group_reports_what_it_reaps() {
    let recorder = recorded(async {
        tokio::select! {
            _ = TaskGroup::<BoxError>::builder()
                .name("dropped")
                .grace(ms(10))
                .scope(|tg| async move {
                    tg.spawn_named("stubborn", aio::on_cancel(sleep_forever::<()>(), |_| async {
                        sleep(FOREVER).await;
                        Ok(())
                    }))?;
                    tg.spawn_named("failing", aio::on_cancel(sleep_forever::<()>(), |_| async {
                        Err("cleanup failed".into())
                    }))?;
                    sleep_forever::<()>().await
                }) => unreachable!(),
            _ = sleep(ms(1)) => {}
        }
        sleep(Duration::from_secs(1)).await;
    });
    let events = recorder.events.lock().unwrap().clone();
    let reaped = event_starting(&events, "task group dropped before it finished");
    assert_eq!(reaped.name, "DEBUG", "a drop is routine: a client hung up");
    let dropped = events
        .iter()
        .find(|e| {
            e.field("message")
                .is_some_and(|m| m.contains("did not finish within the grace period"))
        })
        .expect("the stubborn task is reported");
    assert_eq!(dropped.field("task.name"), Some("stubborn"));
    assert_eq!(dropped.name, "WARN");
    let lost = events
        .iter()
        .find(|e| {
            e.field("message")
                .is_some_and(|m| m.contains("nobody is left to receive"))
        })
        .expect("the lost failure is reported");
    assert_eq!(lost.field("task.name"), Some("failing"));
}

/// A group dropped with every task finishing its cleanup within the grace period logs
/// nothing above DEBUG: client disconnects are routine.
#[test]
fn a_dropped_group_whose_tasks_clean_up_in_time_logs_nothing_above_debug() {
    let recorder = recorded(async {
        tokio::select! {
            _ = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(aio::on_cancel(sleep_forever::<()>(), |_| async {
                    sleep(ms(5)).await;
                    Ok(())
                }))?;
                sleep_forever::<()>().await
            }) => unreachable!(),
            _ = sleep(ms(1)) => {}
        }
        sleep(Duration::from_secs(1)).await;
    });
    let events = recorder.events.lock().unwrap().clone();
    assert!(!events.is_empty(), "the drop is reported at DEBUG");
    let loud: Vec<_> = events
        .iter()
        .filter(|e| !matches!(e.name.as_str(), "DEBUG" | "TRACE"))
        .collect();
    assert!(loud.is_empty(), "{loud:?}");
}

/// A runtime that shuts down while a dropped group's tasks are still cleaning up cuts their
/// cleanup short: that is never silent.
#[test]
fn a_runtime_shutting_down_during_a_reap_says_so() {
    let recorder = recorded(async {
        tokio::select! {
            _ = TaskGroup::<BoxError>::builder().name("handler").scope(|tg| async move {
                tg.spawn(aio::on_cancel(sleep_forever::<()>(), |_| async {
                    sleep(ms(50)).await;
                    Ok(())
                }))?;
                sleep_forever::<()>().await
            }) => unreachable!(),
            _ = sleep(ms(1)) => {}
        }
        // `main` returns at once: the runtime shuts down with the cleanup still running.
    });
    let events = recorder.events.lock().unwrap().clone();
    let cut = event_starting(&events, "the runtime shut down while the tasks");
    assert_eq!(cut.name, "WARN");
    assert_eq!(cut.field("group.name"), Some("handler"));
}

/// A `gather` dropped before it finished (a client hung up on the handler awaiting it) is
/// reported at DEBUG under its call site, so the line can be traced to the code.
#[test]
fn a_dropped_gather_is_reported_under_its_call_site() {
    let line = line!() + 3;
    let recorder = recorded(async {
        tokio::select! {
            _ = aio::gather([sleep_forever::<()>(), sleep_forever()]) => unreachable!(),
            _ = sleep(ms(1)) => {}
        }
        sleep(Duration::from_secs(1)).await;
    });
    let events = recorder.events.lock().unwrap().clone();
    let reaped = event_starting(&events, "task group dropped before it finished");
    assert_eq!(reaped.name, "DEBUG");
    let site = format!("gather at {}:{line}:", file!());
    assert!(
        reaped.field("group.name").unwrap().starts_with(&site),
        "{reaped:?}"
    );
}

/// The first recorded event whose message starts with `start`.
fn event_starting<'a>(events: &'a [Reported], start: &str) -> &'a Reported {
    events
        .iter()
        .find(|e| e.field("message").is_some_and(|m| m.starts_with(start)))
        .unwrap_or_else(|| panic!("no event starts with {start:?}: {events:?}"))
}

//! What the process pool tells `tracing`: here, in the `tracing` binary, because `tracing`
//! caches which call sites a subscriber wants process-wide, and the pool tests of the
//! `process` binary run its call sites on other threads with no subscriber at all.

use aio::ProcessPool;
use aio::process::ProcessError;
use aio_tests::process_fns;

#[test]
fn a_crash_returned_to_its_task_is_not_also_logged_as_a_warning() {
    let warnings = Events::default();
    let _default = tracing::subscriber::set_default(warnings.clone());
    // One thread: the pool's tasks log under this thread's subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let pool = ProcessPool::builder()
            .worker_exe(env!("CARGO_BIN_EXE_process-worker"))
            .registry(process_fns::registry())
            .max_workers(1)
            .build()
            .unwrap();
        let err = pool
            .submit(&process_fns::ABORT_WITH, "gone".into())
            .unwrap()
            .await
            .unwrap_err();
        assert!(matches!(err, ProcessError::WorkerCrashed(_)), "{err:?}");
        pool.shutdown(false).await;
    });
    let events = warnings.0.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|(level, message)| *level == tracing::Level::DEBUG
                && message.contains("died in a task")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(level, _)| *level <= tracing::Level::WARN),
        "{events:?}"
    );
}

/// A subscriber that keeps every event's level and message.
#[derive(Clone, Default)]
struct Events(std::sync::Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        let level = *event.metadata().level();
        self.0.lock().unwrap().push((level, message));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

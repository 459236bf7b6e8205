//! A latency outlier is a WARN event naming the workflow and the domain,
//! logged outside the statistics lock: a subscriber that reads the
//! runtime's statistics while it handles the event does not deadlock. The
//! only test of its binary: the subscriber is thread-wide state and
//! tracing caches each callsite's interest process-wide.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ndf::prelude::*;

mod common;

#[pattern]
async fn lookup(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// The runtime the subscriber reads.
static NDF: OnceLock<Ndf> = OnceLock::new();

/// Writes events down, reading the runtime's statistics for each one.
#[derive(Clone, Default)]
struct ReadingWriter(Arc<Mutex<Vec<String>>>);

impl std::io::Write for ReadingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        let runs = NDF
            .get()
            .and_then(|ndf| ndf.stats("search.lookup", "search"))
            .map_or(0, |s| s.executions);
        self.0
            .lock()
            .unwrap()
            .push(format!("{text} [runs seen: {runs}]"));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_outlier_is_logged_outside_the_statistics_lock() {
    let lines = ReadingWriter::default();
    let seen = lines.clone();
    // On a thread of its own, so that a deadlock fails the test instead of
    // hanging it.
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let rt = common::paused_runtime();
        rt.block_on(async {
            let ndf = NDF.get_or_init(|| {
                Ndf::builder()
                    .resource_probe(ndf::IdleProbe)
                    .build()
                    .unwrap()
            });
            let flow = sequential!(name = "search.lookup"; lookup);
            let ctx = PatternContext::new("search");
            for i in 0..40 {
                ndf.run(&flow, 10 + i % 3, &ctx).await.unwrap();
            }
            ndf.run(&flow, 5_000, &ctx).await.unwrap();
        });
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_mins(2))
        .expect("the run finished: logging the outlier did not deadlock on the statistics");
    let lines = seen.0.lock().unwrap().clone();
    let outliers: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("latency outlier"))
        .collect();
    assert_eq!(outliers.len(), 1, "{lines:#?}");
    assert!(
        outliers[0].contains("pattern=\"search.lookup\"")
            && outliers[0].contains("domain=\"search\""),
        "{}",
        outliers[0]
    );
    assert!(
        outliers[0].contains("[runs seen: 41]"),
        "the subscriber read the statistics, the outlier's run learned: {}",
        outliers[0]
    );
}

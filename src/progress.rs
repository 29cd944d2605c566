//! The progress bar of a load (objects, bytes, events per second, ETA) on
//! stderr when it is a terminal; nothing otherwise, so schedulers' logs stay
//! clean.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    objects: usize,
    started: Instant,
    /// Bytes of the objects done, plus the current object's so far.
    done_bytes: u64,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn new(total_bytes: u64, objects: usize, quiet: bool) -> Self {
        let bar = if std::io::stderr().is_terminal() && !quiet {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style.progress_chars("=> "));
            bar.set_message(format!("0/{objects} objects"));
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress { bar, objects, started: Instant::now(), done_bytes: 0, ticker: None }
    }

    /// Follows one object's byte counter until [`Progress::object_done`].
    pub fn follow(&mut self, bytes: Arc<AtomicU64>) {
        if self.bar.is_hidden() {
            return;
        }
        let (bar, base) = (self.bar.clone(), self.done_bytes);
        self.ticker = Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                bar.set_position(base + bytes.load(Ordering::Relaxed));
            }
        }));
    }

    pub fn object_done(&mut self, done: usize, size: u64, lines: u64) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.done_bytes += size;
        self.bar.set_position(self.done_bytes);
        let rate = lines as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{done}/{} objects, {rate:.0} events/s", self.objects));
    }

    pub fn finish(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

//! What a run says on standard error while it goes: a progress line (files, or objects for a
//! repository, and bytes read) when standard error is a terminal, and the warnings of the
//! run, which are printed in a pipe too.
use std::{
    io::{self, IsTerminal},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, PoisonError,
    },
    time::Duration,
};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::{pipeline::Observer, report::escape::visible, source::Target};

pub struct Progress {
    bar: Option<ProgressBar>,
    objects: AtomicU64,
    /// What is counted for the current target: `files`, or `objects` for a repository.
    unit: Mutex<&'static str>,
    /// The second phase's bar (`--verify`).
    verify_bar: Mutex<Option<ProgressBar>>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} scanning {prefix}: {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            objects: AtomicU64::new(0),
            unit: Mutex::new("files"),
            verify_bar: Mutex::new(None),
        }
    }
}

impl Observer for Progress {
    fn target(&self, target: &Target) {
        if let Some(bar) = &self.bar {
            *self.unit.lock().unwrap_or_else(PoisonError::into_inner) = match target {
                Target::Git(_) => "objects",
                _ => "files",
            };
            bar.set_prefix(target.to_string());
        }
    }

    fn object(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            let objects = self.objects.fetch_add(1, Ordering::Relaxed) + 1;
            bar.inc(bytes);
            let unit = *self.unit.lock().unwrap_or_else(PoisonError::into_inner);
            bar.set_message(format!("{objects} {unit}, {}", HumanBytes(bar.position())));
        }
    }

    /// Printed without tearing the progress line.
    fn warn(&self, message: &str) {
        // Warnings name files, and file names come from scanned input.
        let print = || eprintln!("detector: {}", visible(message));
        match &self.bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn verifying(&self, keys: usize) {
        if io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(keys as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} verifying keys with their providers: {pos}/{len} {elapsed}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            *self
                .verify_bar
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(bar);
        }
    }

    fn verified(&self) {
        let slot = self
            .verify_bar
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(bar) = &*slot {
            bar.inc(1);
            if bar.length().is_some_and(|len| bar.position() >= len) {
                bar.finish_and_clear();
            }
        }
    }
}

//! Live progress of an apply: a spinner with the steps in flight on a terminal, one line per
//! finished step otherwise (CI logs, pipes).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use paas_core::engine::{Action, Event};

/// Renders engine [`Event`]s on stderr.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    in_flight: Mutex<Vec<String>>,
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Delete => "deleted",
    }
}

impl Progress {
    /// A display for `total` steps; `quiet` shows nothing but failures.
    pub fn new(total: usize, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal() && total > 0).then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed_precise} {wide_msg}").expect("valid template"));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            quiet,
            in_flight: Mutex::new(Vec::new()),
        }
    }

    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Shows one event.
    pub fn handle(&self, event: Event) {
        let mut in_flight = self.in_flight.lock().unwrap();
        match event {
            Event::Started { id, .. } => in_flight.push(id.to_string()),
            Event::Retrying { id, attempt, error, .. } => {
                if !self.quiet {
                    self.println(format!("  ↻ {id}: retry {attempt} after: {error}"));
                }
            }
            Event::Finished { id, action, elapsed_ms } => {
                in_flight.retain(|i| i != id.as_str());
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                if !self.quiet {
                    self.println(format!(
                        "  {} {id} {} ({:.1}s)",
                        action.mark(),
                        verb(action),
                        elapsed_ms as f64 / 1000.0
                    ));
                }
            }
            Event::Failed { id, action, error } => {
                in_flight.retain(|i| i != id.as_str());
                self.println(format!("  ✗ {action:?} {id} failed: {error}"));
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(in_flight.join(", "));
        }
    }

    /// Removes the spinner.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

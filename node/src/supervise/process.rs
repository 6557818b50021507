//! One supervised program: its process, its restarts, and how processes are reaped and
//! stopped.
//!
//! Processes are spawned with `std::process` and reaped with `waitpid(-1)`, never with
//! tokio's child handling: as PID 1 the supervisor must reap every orphan too, and a blanket
//! `waitpid(-1)` would steal the exits tokio waits for.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::signal::unix::Signal;
use tokio::time::Instant;

use super::Args;
use super::output::ProgramLog;

/// A program that ran at least this long was healthy: its next restart starts from the
/// smallest backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

/// A program the supervisor keeps running.
pub struct Supervised {
    command: Vec<String>,
    log: ProgramLog,
    /// The running process (also its process group id), if any.
    pid: Option<i32>,
    started_at: Instant,
    restart_at: Option<Instant>,
    backoff: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Supervised {
    pub fn new(name: &str, command: Vec<String>, args: &Args) -> Supervised {
        Supervised {
            command,
            log: ProgramLog::open(&args.log_dir, name),
            pid: None,
            started_at: Instant::now(),
            restart_at: None,
            backoff: args.min_backoff,
            min_backoff: args.min_backoff,
            max_backoff: args.max_backoff,
        }
    }

    /// When the program is due to be started again, if it is down.
    pub fn restart_at(&self) -> Option<Instant> {
        self.restart_at
    }

    /// Starts the program in a process group of its own (so its helpers can be signalled
    /// with it); a failure to start is handled like an immediate exit.
    pub fn start(&mut self) {
        self.restart_at = None;
        self.started_at = Instant::now();
        let Some((program, arguments)) = self.command.split_first() else {
            self.log.note("empty command: nothing to run");
            return;
        };
        let spawned = Command::new(program)
            .args(arguments)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn();
        match spawned {
            Ok(mut child) => {
                let pid = child.id() as i32;
                self.log.note(&format!("started (pid {pid}): {}", self.command.join(" ")));
                if let Some(out) = child.stdout.take() {
                    self.log.pump(out);
                }
                if let Some(err) = child.stderr.take() {
                    self.log.pump(err);
                }
                // The `Child` is dropped without waiting: `reap_all` collects the exit.
                self.pid = Some(pid);
            }
            Err(e) => {
                self.log.note(&format!("cannot start {program}: {e}"));
                self.schedule_restart();
            }
        }
    }

    fn exited(&mut self, status: i32) {
        self.pid = None;
        let how = if libc::WIFEXITED(status) {
            format!("exited with status {}", libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            format!("was killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("ended ({status})")
        };
        self.log.note(&how);
        self.schedule_restart();
    }

    fn schedule_restart(&mut self) {
        if self.started_at.elapsed() >= HEALTHY_RUN {
            self.backoff = self.min_backoff;
        }
        self.log.note(&format!("restarting in {:?}", self.backoff));
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.max_backoff);
    }

    fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) has no memory effects; a stale group id only yields ESRCH.
            unsafe {
                libc::kill(-pid, signal);
            }
        }
    }
}

/// Makes this process the reaper of its descendants' orphans (Linux), as PID 1 is anyway.
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// Collects every child that has exited: a supervised program is scheduled for restart, any
/// other process (an orphan) is just reaped.
pub fn reap_all(programs: &mut [Supervised]) {
    while let Some((pid, status)) = reap_one() {
        if let Some(program) = programs.iter_mut().find(|p| p.pid == Some(pid)) {
            // Helpers left in its group (nginx workers, a shell's children) go with it, so
            // the restarted program finds its ports free.
            // SAFETY: see `Supervised::signal`.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            program.exited(status);
        }
    }
}

fn reap_one() -> Option<(i32, i32)> {
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, a valid local.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    (pid > 0).then_some((pid, status))
}

/// Sends SIGTERM to every program, waits up to `grace` for them to exit, then kills what is
/// left. No program is restarted.
pub async fn stop_all(programs: &mut [Supervised], child_exited: &mut Signal, grace: Duration) {
    for program in programs.iter_mut() {
        program.restart_at = None;
        program.log.note("stopping (SIGTERM)");
        program.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while programs.iter().any(|p| p.pid.is_some()) {
        while let Some((pid, status)) = reap_one() {
            if let Some(program) = programs.iter_mut().find(|p| p.pid == Some(pid)) {
                program.pid = None;
                program.log.note(&format!("stopped ({status})"));
            }
        }
        if programs.iter().all(|p| p.pid.is_none()) {
            break;
        }
        tokio::select! {
            // Cancel-safe: signal deliveries are kept until received; reaping is by waitpid.
            _ = child_exited.recv() => {}
            // Cancel-safe: a sleep holds no state.
            _ = tokio::time::sleep_until(deadline) => {
                for program in programs.iter().filter(|p| p.pid.is_some()) {
                    program.log.note(&format!("did not stop within {grace:?}: killing it"));
                    program.signal(libc::SIGKILL);
                }
                // Killed processes exit at once; collect them and return.
                tokio::time::sleep(Duration::from_millis(100)).await;
                while reap_one().is_some() {}
                break;
            }
        }
    }
}

//! One chaos run: the probe and the observer run for the whole session while faults are
//! injected, healed and recovered from; [`Session::finish`] turns what was recorded into a
//! [`Journal`].
//!
//! Every fault is recorded in the [`ActiveStore`] before it is applied, and removed only when
//! healed, so an interrupted run leaves a record `paas chaos heal` can act on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use paas_core::app::AppId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::active::{self, ActiveStore, StoreError};
use crate::fault::{Action, FaultPlan};
use crate::journal::{self, Check, FaultResult, Journal, ViewPoint};
use crate::platform::{ClusterView, NodeState, Platform, PlatformError};
use crate::probe::{Probe, ProbeConfig};

/// How a session probes and waits.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Probe requests per second (capped by the probe).
    pub rate: u32,
    pub probe_timeout: Duration,
    /// How long to wait for the platform to recover before calling it failed.
    pub recover_timeout: Duration,
    /// How often the platform is observed.
    pub observe_every: Duration,
    /// How long a kill or stop without a duration keeps its nodes down at least, so the
    /// probe measures the degraded platform even when it recovers at once.
    pub hold: Duration,
    pub seed: u64,
}

/// Why a session stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the cluster is not in its steady state: {}", .0.join("; "))]
    NotSteady(Vec<String>),
}

/// A fault in force within the session.
struct Injected {
    record: u64,
    plan: FaultPlan,
    started: Instant,
    healed: bool,
    /// Left in force on purpose (`--no-heal`): recorded for `paas chaos heal`.
    kept: bool,
}

pub struct Session<'a> {
    platform: Arc<dyn Platform>,
    store: &'a ActiveStore,
    config: SessionConfig,
    cancel: CancellationToken,
    report: &'a (dyn Fn(&str) + Sync),
    t0: Instant,
    started_unix_ms: u64,
    lbs: Vec<String>,
    vhosts: Vec<String>,
    probe: Option<Probe>,
    views: Arc<Mutex<Vec<ViewPoint>>>,
    latest: watch::Receiver<(u64, ClusterView)>,
    observer: tokio::task::JoinHandle<()>,
    events: Vec<(f64, String)>,
    results: Vec<FaultResult>,
    checks: Vec<Check>,
    active: Vec<Injected>,
}

impl<'a> Session<'a> {
    /// Observes the platform, then starts the observer and the probe for every app.
    pub async fn start(
        platform: Arc<dyn Platform>,
        store: &'a ActiveStore,
        config: SessionConfig,
        cancel: CancellationToken,
        report: &'a (dyn Fn(&str) + Sync),
    ) -> Result<Session<'a>, SessionError> {
        let t0 = Instant::now();
        let nodes = platform.nodes().await?;
        let lbs = nodes
            .iter()
            .filter(|n| n.role == Some(paas_core::Role::Lb))
            .map(|n| n.name.clone())
            .collect();
        let view = platform.view().await;
        let mut vhosts: Vec<String> = view.apps.iter().flatten().map(|a| a.vhost.clone()).collect();
        vhosts.sort();
        let (sender, latest) = watch::channel((0, view.clone()));
        let views = Arc::new(Mutex::new(vec![ViewPoint::of(0, &view)]));
        let observer = {
            let views = views.clone();
            let every = config.observe_every;
            let platform = platform.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                loop {
                    // Cancel-safe: a view in progress is simply dropped.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(every) => {}
                    }
                    let view = tokio::select! {
                        _ = cancel.cancelled() => return,
                        view = platform.view() => view,
                    };
                    let t = t0.elapsed().as_millis() as u64;
                    views.lock().unwrap().push(ViewPoint::of(t, &view));
                    if sender.send((t, view)).is_err() {
                        return;
                    }
                }
            })
        };
        let probe = Probe::start(
            ProbeConfig {
                entry: platform.entry(),
                vhosts: vhosts.clone(),
                rate: config.rate,
                timeout: config.probe_timeout,
            },
            t0,
        );
        report(&format!(
            "probing {} through {} at {} requests/s",
            if vhosts.is_empty() {
                "no app".to_string()
            } else {
                vhosts.join(", ")
            },
            platform.entry(),
            config.rate.min(crate::probe::MAX_RATE)
        ));
        Ok(Session {
            platform,
            store,
            config,
            cancel,
            report,
            t0,
            started_unix_ms: active::now_unix() * 1000,
            lbs,
            vhosts,
            probe: Some(probe),
            views,
            latest,
            observer,
            events: Vec::new(),
            results: Vec::new(),
            checks: Vec::new(),
            active: Vec::new(),
        })
    }

    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    fn event(&mut self, what: String) {
        (self.report)(&format!("{:>7.1}s  {what}", self.now()));
        self.events.push((self.now(), what));
    }

    /// Sleeps unless cancelled.
    pub async fn sleep(&self, duration: Duration) -> Result<(), SessionError> {
        // Cancel-safe: sleeping has no state to lose.
        tokio::select! {
            _ = self.cancel.cancelled() => Err(SessionError::Interrupted),
            _ = tokio::time::sleep(duration) => Ok(()),
        }
    }

    /// Waits until the observed platform has every app serving at its instance count with no
    /// task on `lost` and routed by every lb not in `lost_lbs`. Returns the time it took, or
    /// what was still missing at `timeout`.
    pub async fn wait_recovered(
        &mut self,
        lost: &[String],
        lost_lbs: &[String],
        down: &[String],
        timeout: Duration,
    ) -> Result<Result<Duration, Vec<String>>, SessionError> {
        let started = Instant::now();
        // An lb that is down (a kill left unhealed) cannot be expected to route.
        let running: Vec<String> = self
            .platform
            .nodes()
            .await
            .map(|nodes| {
                nodes
                    .into_iter()
                    .filter(|n| n.state == NodeState::Running)
                    .map(|n| n.name)
                    .collect()
            })
            .unwrap_or_else(|_| self.lbs.clone());
        let lbs: Vec<String> = self
            .lbs
            .iter()
            .filter(|lb| !lost_lbs.contains(lb) && running.contains(lb))
            .cloned()
            .collect();
        let mut latest = self.latest.clone();
        // Only views taken after the wait began count: an older one may predate the fault.
        latest.mark_unchanged();
        let mut last_missing = String::new();
        let mut last_said = None;
        loop {
            let remaining = timeout.saturating_sub(started.elapsed());
            // Cancel-safe: `changed` may be re-awaited; a timeout loses nothing.
            let changed = tokio::select! {
                _ = self.cancel.cancelled() => return Err(SessionError::Interrupted),
                changed = tokio::time::timeout(remaining, latest.changed()) => changed,
            };
            let missing = {
                let (_, view) = &*latest.borrow_and_update();
                view.unrecovered(&lbs, lost, down)
            };
            if missing.is_empty() {
                return Ok(Ok(started.elapsed()));
            }
            if changed.is_err() || started.elapsed() >= timeout {
                return Ok(Err(missing));
            }
            // What is missing, at most every 5 s: counts flicker while the platform converges.
            let text = missing.join("; ");
            if text != last_missing && last_said.is_none_or(|t: Instant| t.elapsed() >= Duration::from_secs(5)) {
                (self.report)(&format!("{:>7.1}s    waiting: {text}", self.now()));
                last_missing = text;
                last_said = Some(Instant::now());
            }
        }
    }

    /// Checks the steady state before a fault.
    pub async fn expect_steady(&mut self, timeout: Duration) -> Result<(), SessionError> {
        match self.wait_recovered(&[], &[], &[], timeout).await? {
            Ok(_) => {
                self.checks.push(Check::passed(
                    "steady state before the faults",
                    "every app at its instance count and routed by every lb",
                ));
                Ok(())
            }
            Err(missing) => {
                self.checks
                    .push(Check::failed("steady state before the faults", &missing.join("; ")));
                Err(SessionError::NotSteady(missing))
            }
        }
    }

    /// Records then applies a plan's effects (in order, waiting for recovery after each start
    /// of a rolling restart).
    async fn inject(&mut self, plan: &FaultPlan, duration: Option<Duration>) -> Result<usize, SessionError> {
        let heal_at = duration.map(|d| active::now_unix() + d.as_secs() + 1);
        let record = self.store.add(&plan.description, heal_at, plan.heals())?;
        self.active.push(Injected {
            record,
            plan: plan.clone(),
            started: Instant::now(),
            healed: false,
            kept: false,
        });
        let index = self.active.len() - 1;
        self.event(format!("{}: {}", plan.description, plan.targets.join(", ")));
        for effect in &plan.effects {
            active::apply(&*self.platform, effect).await?;
            if plan.rolling {
                self.event(effect.describe());
                let stopped: Vec<String> = vec![effect.node.clone()];
                if matches!(
                    effect.action,
                    Action::Node {
                        op: paas_core::NodeOp::Start
                    }
                ) {
                    if let Err(missing) = self.wait_recovered(&[], &[], &[], self.config.recover_timeout).await? {
                        self.event(format!("not recovered after restarting {}: {}", effect.node, missing.join("; ")));
                    }
                } else {
                    let lost = self.addresses_of(&effect.node).await;
                    let _ = self.wait_recovered(&lost, &stopped, &stopped, self.config.recover_timeout).await?;
                }
            }
        }
        Ok(index)
    }

    async fn addresses_of(&self, node: &str) -> Vec<String> {
        self.platform
            .nodes()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.name == node && n.role == Some(paas_core::Role::Slave))
            .map(|n| n.address)
            .collect()
    }

    /// Applies the heals of one injected fault, then forgets its record.
    async fn heal(&mut self, index: usize) -> Result<(), SessionError> {
        if self.active[index].healed {
            return Ok(());
        }
        let heals = self.active[index].plan.heals();
        for heal in &heals {
            active::apply(&*self.platform, heal).await?;
        }
        if !heals.is_empty() {
            let names: Vec<String> = heals.iter().map(|h| h.describe()).collect();
            self.event(format!("healed: {}", names.join(", ")));
        }
        self.active[index].healed = true;
        self.store.remove(self.active[index].record)?;
        Ok(())
    }

    /// Heals whatever this session still has in force (after an interruption or a failure),
    /// except faults kept on purpose.
    pub async fn heal_remaining(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        for index in 0..self.active.len() {
            if self.active[index].kept {
                continue;
            }
            if let Err(e) = self.heal(index).await {
                failures.push(format!("{}: {e}", self.active[index].plan.description));
            }
        }
        failures
    }

    /// Runs one fault through its whole life: inject; then either wait `duration` and heal,
    /// or (node kills and stops) wait for the platform to recover without the nodes; wait for
    /// recovery; heal the rest when `heal` is set; measure.
    pub async fn run_fault(&mut self, plan: &FaultPlan, duration: Option<Duration>, heal: bool) -> Result<FaultResult, SessionError> {
        let start = self.now();
        let baseline = self.latest.borrow().1.task_ids();
        let index = self.inject(plan, duration).await?;
        let timeout = self.config.recover_timeout;
        let (recovery, heal_time, from_heal) = match duration {
            Some(duration) => {
                self.sleep(duration.saturating_sub(self.active[index].started.elapsed())).await?;
                self.heal(index).await?;
                let healed_at = self.now();
                (self.wait_recovered(&[], &[], &[], timeout).await?, Some(healed_at), true)
            }
            None => {
                // A rolling restart has brought every node back by now.
                let down: &[String] = if plan.rolling { &[] } else { &plan.targets };
                let recovery = self.wait_recovered(&plan.lost_slaves, &plan.lost_lbs, down, timeout).await?;
                (recovery, None, false)
            }
        };
        match &recovery {
            Ok(took) => self.event(format!(
                "recovered {:.1}s after the {}",
                took.as_secs_f64(),
                if from_heal { "heal" } else { "fault" }
            )),
            Err(missing) => self.event(format!("not recovered within {timeout:?}: {}", missing.join("; "))),
        }
        let held = self.active[index].started.elapsed();
        if duration.is_none() && held < self.config.hold {
            self.sleep(self.config.hold - held).await?;
        }
        // The measured window: from the fault to its recovery, heal or hold, whichever is last.
        let end = self.now();
        let mut heal_time = heal_time;
        self.active[index].kept = !heal && !self.active[index].healed;
        if heal && !self.active[index].healed {
            self.heal(index).await?;
            heal_time = Some(self.now());
            // The healed nodes rejoin: wait for every lb to route again before the next step.
            if let Err(missing) = self.wait_recovered(&[], &[], &[], timeout).await? {
                self.event(format!("not steady after the heal: {}", missing.join("; ")));
            }
        }
        let samples = self.probe.as_ref().map(Probe::snapshot).unwrap_or_default();
        let views = self.views.lock().unwrap().clone();
        let capacity = match (&recovery, self.platform.agent_resources()) {
            (Err(_), Some(per_agent)) if !plan.lost_slaves.is_empty() => journal::capacity_note(&self.latest.borrow().1, per_agent, plan),
            _ => None,
        };
        Ok(journal::fault_result(journal::FaultWindow {
            plan,
            start,
            end,
            heal: heal_time,
            recovery_seconds: recovery.as_ref().ok().map(Duration::as_secs_f64),
            recovery_from_heal: from_heal,
            unrecovered: recovery.err().unwrap_or_default(),
            samples: &samples,
            views: &views,
            baseline_tasks: &baseline,
            capacity_note: capacity,
        }))
    }

    /// Records a fault's result and checks it against the hypothesis.
    pub fn record(&mut self, result: FaultResult, hypothesis: &crate::hypothesis::Hypothesis) {
        self.checks.extend(hypothesis.check(&result));
        self.results.push(result);
    }

    /// Adds a check made outside a fault (a scenario's `assert`).
    pub fn add_check(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Availability (percent) of every request so far, or `None` without requests.
    pub fn availability_so_far(&self) -> Option<f64> {
        let samples = self.probe.as_ref().map(Probe::snapshot).unwrap_or_default();
        journal::availability(samples.iter())
    }

    /// Scales an app and waits for it to serve at the new count.
    ///
    /// Steady is judged only on a view that shows the new count: a view taken while the change
    /// was on its way to Marathon shows the old count, serving, and looked steady, so a fault
    /// could start with the new instances not yet placed (every one of them on the slaves about
    /// to be killed).
    pub async fn scale(&mut self, app: &str, instances: u32) -> Result<Result<Duration, Vec<String>>, SessionError> {
        self.platform.scale_app(app, instances).await?;
        self.event(format!("scaled {app} to {instances}"));
        let id = AppId::parse(app)
            .map(|id| id.as_str().to_string())
            .unwrap_or_else(|_| app.to_string());
        let timeout = self.config.recover_timeout;
        let started = Instant::now();
        loop {
            let waited = self
                .wait_recovered(&[], &[], &[], timeout.saturating_sub(started.elapsed()))
                .await?;
            let at_count = {
                let (_, view) = &*self.latest.borrow();
                view.apps.iter().flatten().any(|a| a.id == id && a.instances == instances)
            };
            match waited {
                Ok(_) if !at_count && started.elapsed() < timeout => continue,
                Ok(_) if !at_count => return Ok(Err(vec![format!("{id} not yet at {instances} instances")])),
                Ok(_) => return Ok(Ok(started.elapsed())),
                Err(missing) => return Ok(Err(missing)),
            }
        }
    }

    /// Deploys an app and waits for it to serve. The probe keeps to the apps present when the
    /// session started.
    pub async fn deploy(&mut self, definition: &str) -> Result<Result<Duration, Vec<String>>, SessionError> {
        self.platform.deploy_app(definition).await?;
        let id = AppId::parse(
            serde_json::from_str::<serde_json::Value>(definition)
                .ok()
                .and_then(|v| v["id"].as_str().map(String::from))
                .unwrap_or_default()
                .as_str(),
        )
        .map(|id| id.as_str().to_string())
        .unwrap_or_default();
        self.event(format!("deployed {id}"));
        self.wait_recovered(&[], &[], &[], self.config.recover_timeout).await
    }

    /// Stops the probe and the observer and assembles the journal.
    pub async fn finish(mut self, name: &str, interrupted: bool) -> Journal {
        self.observer.abort();
        let samples = match self.probe.take() {
            Some(probe) => probe.stop().await,
            None => Vec::new(),
        };
        let views = self.views.lock().unwrap().clone();
        journal::assemble(journal::Assembly {
            name: name.to_string(),
            backend: self.platform.backend(),
            seed: self.config.seed,
            started_unix_ms: self.started_unix_ms,
            entry: self.platform.entry(),
            rate: self.config.rate.min(crate::probe::MAX_RATE),
            vhosts: self.vhosts.clone(),
            samples,
            views,
            events: std::mem::take(&mut self.events),
            results: std::mem::take(&mut self.results),
            checks: std::mem::take(&mut self.checks),
            interrupted,
        })
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.observer.abort();
    }
}

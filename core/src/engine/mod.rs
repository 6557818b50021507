//! The deployment engine: refresh, plan, apply, destroy — the same for every backend.
//!
//! Apply runs in two phases. First every deletion (plain deletes and the delete half of
//! replacements), rank by rank from the top, so nothing is deleted before what depends on it.
//! Then every creation and update, each as soon as its dependencies are done, at most
//! `parallelism` at a time. Each finished step is written to the state file at once.
//!
//! Rolled replacements ([`Plan::rolling`]) are the exception: they are not deleted up front but
//! in the second phase, one at a time in the plan's order, each deleting the old machine and
//! creating the new one before the next starts. With a [`RollGate`], each waits for the
//! cluster to serve before deleting and after creating.

mod lock;
mod plan;
mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;

pub use lock::{Lock, LockError, LockHolder};
pub use plan::{Action, Plan, PlanMeaning, Step, meaning, plan, plan_destroy};
pub use state::{State, StateError, StateStore};

use crate::backend::{Backend, BackendError, Observed, Resolved};
use crate::graph::Graph;
use crate::resource::{Resource, ResourceId};

/// How apply behaves.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Steps in flight at once.
    pub parallelism: usize,
    /// Tries of a step that fails transiently (throttling, timeouts).
    pub attempts: u32,
    /// First retry delay; doubled on each further retry.
    pub retry_delay: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            parallelism: 10,
            attempts: 5,
            retry_delay: Duration::from_millis(200),
        }
    }
}

/// Progress of an apply, for display.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        id: ResourceId,
        action: Action,
    },
    Retrying {
        id: ResourceId,
        action: Action,
        attempt: u32,
        error: String,
    },
    Finished {
        id: ResourceId,
        action: Action,
        elapsed_ms: u64,
    },
    Failed {
        id: ResourceId,
        action: Action,
        error: String,
    },
}

/// What an apply did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub done: Vec<(ResourceId, Action)>,
    pub elapsed_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("listing the cluster's resources on {backend} failed")]
    List {
        backend: &'static str,
        #[source]
        source: BackendError,
    },
    #[error("{action} {id} failed ({done} steps finished and recorded; re-run to continue)")]
    Step {
        action: &'static str,
        id: ResourceId,
        done: usize,
        #[source]
        source: BackendError,
    },
    #[error("{id} needs {dependency}, which does not exist")]
    MissingDependency { id: ResourceId, dependency: ResourceId },
}

/// What a roll waits for after each replaced machine before taking the next one down: the
/// cluster serving again (a quorum, the leaders, the lbs). Without one, the next replacement
/// starts as soon as the backend has created the machine.
#[async_trait::async_trait]
pub trait RollGate: Send + Sync {
    /// Returns once the cluster serves again after `replaced` was replaced; fails (stopping
    /// the apply, the rest of the roll not started) when it does not within its own bound.
    async fn ready(&self, replaced: &ResourceId) -> Result<(), BackendError>;
}

/// Runs plans against one backend, recording progress in one state store.
pub struct Engine<'a> {
    backend: &'a dyn Backend,
    store: StateStore,
    options: ApplyOptions,
    gate: Option<&'a dyn RollGate>,
}

impl<'a> Engine<'a> {
    pub fn new(backend: &'a dyn Backend, store: StateStore, options: ApplyOptions) -> Engine<'a> {
        Engine {
            backend,
            store,
            options,
            gate: None,
        }
    }

    /// Waits on `gate` after each rolled replacement.
    pub fn with_gate(mut self, gate: &'a dyn RollGate) -> Engine<'a> {
        self.gate = Some(gate);
        self
    }

    pub fn store(&self) -> &StateStore {
        &self.store
    }

    /// Lists the cluster on the backend. Reads only.
    pub async fn observe(&self, cluster: &str) -> Result<Vec<Observed>, EngineError> {
        self.backend.list(cluster).await.map_err(|source| EngineError::List {
            backend: self.backend.name(),
            source,
        })
    }

    /// Rebuilds the state file from the backend's labels/tags.
    pub async fn refresh(&self, cluster: &str, command: &str) -> Result<State, EngineError> {
        let _lock = Lock::acquire(self.store.dir(), self.backend.name(), command)?;
        let observed = self.observe(cluster).await?;
        let mut state = self.store.load().unwrap_or_else(|_| State::new(cluster, self.backend.name()));
        state.replace_all(&observed);
        self.store.save(&mut state)?;
        Ok(state)
    }

    /// Plans against the world as the backend lists it now. Reads only.
    pub async fn plan(&self, desired: &Graph) -> Result<Plan, EngineError> {
        let observed = self.observe(&desired.cluster).await?;
        Ok(plan(desired, &observed))
    }

    /// Makes the world match `desired`: lock, re-read the backend, plan, execute.
    pub async fn apply(
        &self,
        desired: &Graph,
        command: &str,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(Plan, ApplyReport), EngineError> {
        let _lock = Lock::acquire(self.store.dir(), self.backend.name(), command)?;
        let observed = self.observe(&desired.cluster).await?;
        let plan = plan(desired, &observed);
        let report = self.execute(&plan, desired, &observed, on_event).await?;
        Ok((plan, report))
    }

    /// Deletes every resource of the cluster, highest rank first.
    pub async fn destroy(
        &self,
        cluster: &str,
        target: crate::graph::Target,
        command: &str,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<(Plan, ApplyReport), EngineError> {
        let _lock = Lock::acquire(self.store.dir(), self.backend.name(), command)?;
        let observed = self.observe(cluster).await?;
        let plan = plan_destroy(cluster, target, &observed);
        let empty = Graph::empty(cluster, target);
        let report = self.execute(&plan, &empty, &observed, on_event).await?;
        Ok((plan, report))
    }

    /// Executes a plan made from `observed`. The caller holds the lock.
    async fn execute(
        &self,
        plan: &Plan,
        desired: &Graph,
        observed: &[Observed],
        on_event: &(dyn Fn(Event) + Sync),
    ) -> Result<ApplyReport, EngineError> {
        let started = Instant::now();
        let cluster = &plan.cluster;
        let mut state = self.store.load().unwrap_or_else(|_| State::new(cluster, self.backend.name()));
        state.replace_all(observed);
        self.store.save(&mut state)?;
        let mut report = ApplyReport::default();

        // Phase 1: deletions, rank by rank from the top.
        let deletions: Vec<&Step> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Delete | Action::Replace) && s.current.is_some() && !plan.rolls(&s.id))
            .collect();
        let mut ranks: Vec<u8> = deletions
            .iter()
            .map(|s| s.id.kind().rank())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        ranks.reverse();
        for rank in ranks {
            let mut in_flight = FuturesUnordered::new();
            let mut queue = deletions.iter().filter(|s| s.id.kind().rank() == rank);
            let mut failure = None;
            loop {
                while failure.is_none() && in_flight.len() < self.options.parallelism {
                    let Some(step) = queue.next() else { break };
                    on_event(Event::Started {
                        id: step.id.clone(),
                        action: step.action,
                    });
                    in_flight.push(self.run_delete(cluster, step, on_event));
                }
                let Some((step, result, elapsed)) = in_flight.next().await else {
                    break;
                };
                match result {
                    Ok(()) => {
                        let current = step.current.as_ref().expect("deletions carry the observed resource");
                        // Only forget the entry if it is this copy (a duplicate shares the id).
                        if state.resources.get(&step.id).is_some_and(|o| o.provider_id == current.provider_id) {
                            state.resources.remove(&step.id);
                        }
                        self.store.save(&mut state)?;
                        if step.action == Action::Delete {
                            finished(step, elapsed, &mut report, on_event);
                        }
                    }
                    Err(source) => failed(step, source, &mut failure, on_event),
                }
            }
            if let Some(error) = step_error(failure, &report) {
                return Err(error);
            }
        }

        // Phase 2: creations and updates in dependency order.
        let work: BTreeMap<&ResourceId, &Step> = plan
            .steps
            .iter()
            .filter(|s| s.action != Action::Delete)
            .map(|s| (&s.id, s))
            .collect();
        let mut waiting: Vec<&Resource> = desired.resources().iter().filter(|r| work.contains_key(&r.id)).collect();
        let mut pending: BTreeSet<&ResourceId> = work.keys().copied().collect();
        // The rolled replacements still to do, in order; the first may run once none is running.
        let mut rolls = plan.rolling.iter().filter(|id| work.contains_key(id)).peekable();
        let mut rolling_now = false;
        let mut in_flight = FuturesUnordered::new();
        let mut failure = None;
        loop {
            if failure.is_none() {
                let mut i = 0;
                while i < waiting.len() && in_flight.len() < self.options.parallelism {
                    let resource = waiting[i];
                    let rolled = plan.rolls(&resource.id);
                    let its_turn = !rolled || (!rolling_now && rolls.peek() == Some(&&resource.id));
                    if !its_turn || resource.depends_on.iter().any(|d| pending.contains(d)) {
                        i += 1;
                        continue;
                    }
                    if rolled {
                        rolls.next();
                        rolling_now = true;
                    }
                    waiting.remove(i);
                    let step = work[&resource.id];
                    let mut deps = Resolved::new();
                    for d in &resource.depends_on {
                        match state.resources.get(d) {
                            Some(o) => {
                                deps.insert(d.clone(), o.clone());
                            }
                            None => {
                                return Err(EngineError::MissingDependency {
                                    id: resource.id.clone(),
                                    dependency: d.clone(),
                                });
                            }
                        }
                    }
                    let current = state.resources.get(&resource.id).cloned();
                    on_event(Event::Started {
                        id: resource.id.clone(),
                        action: step.action,
                    });
                    let how = match (step.action, current) {
                        (Action::Update, Some(current)) => How::Update(current),
                        _ if rolled => How::Roll,
                        _ => How::Create,
                    };
                    in_flight.push(self.run_create_or_update(cluster, step, resource, how, deps, on_event));
                }
            }
            let Some((step, result, elapsed)) = in_flight.next().await else {
                break;
            };
            if plan.rolls(&step.id) {
                rolling_now = false;
            }
            match result {
                Ok(observed) => {
                    pending.remove(&step.id);
                    state.resources.insert(step.id.clone(), observed);
                    self.store.save(&mut state)?;
                    finished(step, elapsed, &mut report, on_event);
                }
                Err(source) => failed(step, source, &mut failure, on_event),
            }
        }
        if let Some(error) = step_error(failure, &report) {
            return Err(error);
        }
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    async fn run_delete<'s>(
        &self,
        cluster: &str,
        step: &'s Step,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> (&'s Step, Result<(), BackendError>, u64) {
        let started = Instant::now();
        let current = step.current.as_ref().expect("deletions carry the observed resource");
        let result = self.retrying(step, on_event, || self.backend.delete(cluster, current)).await;
        let result = match result {
            Err(BackendError::NotFound { .. }) => Ok(()),
            other => other,
        };
        (step, result, started.elapsed().as_millis() as u64)
    }

    async fn run_create_or_update<'s>(
        &self,
        cluster: &str,
        step: &'s Step,
        resource: &Resource,
        how: How,
        deps: Resolved,
        on_event: &(dyn Fn(Event) + Sync),
    ) -> (&'s Step, Result<Observed, BackendError>, u64) {
        let started = Instant::now();
        let result = match how {
            How::Update(current) => {
                self.retrying(step, on_event, || self.backend.update(cluster, resource, &current, &deps))
                    .await
            }
            How::Roll => {
                // The machine the plan saw: the state may list another copy of the same id.
                let old = step.current.as_ref().expect("replacements carry the observed resource");
                // Never take a machine down while the cluster does not serve: this also holds
                // for the first machine of a roll resumed after an interruption.
                let serving = match self.gate {
                    Some(gate) => gate.ready(&step.id).await,
                    None => Ok(()),
                };
                let deleted = match serving {
                    Ok(()) => match self.retrying(step, on_event, || self.backend.delete(cluster, old)).await {
                        Err(BackendError::NotFound { .. }) => Ok(()),
                        other => other,
                    },
                    Err(e) => Err(e),
                };
                let created = match deleted {
                    Ok(()) => {
                        self.retrying(step, on_event, || self.backend.create(cluster, resource, &deps))
                            .await
                    }
                    Err(e) => Err(e),
                };
                match (created, self.gate) {
                    (Ok(observed), Some(gate)) => gate.ready(&step.id).await.map(|()| observed),
                    (other, _) => other,
                }
            }
            How::Create => {
                self.retrying(step, on_event, || self.backend.create(cluster, resource, &deps))
                    .await
            }
        };
        (step, result, started.elapsed().as_millis() as u64)
    }

    async fn retrying<T, F, Fut>(&self, step: &Step, on_event: &(dyn Fn(Event) + Sync), mut call: F) -> Result<T, BackendError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BackendError>>,
    {
        let mut delay = self.options.retry_delay;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_transient() && attempt < self.options.attempts => {
                    on_event(Event::Retrying {
                        id: step.id.clone(),
                        action: step.action,
                        attempt,
                        error: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// How a creation-phase step is carried out.
enum How {
    Create,
    /// In place, from what is there now.
    Update(Observed),
    /// A rolled replacement: delete the old machine, create the new one (behind the gate).
    Roll,
}

/// Records a finished step: shown, and counted in the report.
fn finished(step: &Step, elapsed_ms: u64, report: &mut ApplyReport, on_event: &(dyn Fn(Event) + Sync)) {
    on_event(Event::Finished {
        id: step.id.clone(),
        action: step.action,
        elapsed_ms,
    });
    report.done.push((step.id.clone(), step.action));
}

/// Records a failed step; the first failure is the one reported once in-flight steps end.
fn failed<'s>(step: &'s Step, source: BackendError, failure: &mut Option<(&'s Step, BackendError)>, on_event: &(dyn Fn(Event) + Sync)) {
    on_event(Event::Failed {
        id: step.id.clone(),
        action: step.action,
        error: format!("{source:#}"),
    });
    failure.get_or_insert((step, source));
}

/// The error of the first failed step of a phase, if any.
fn step_error(failure: Option<(&Step, BackendError)>, report: &ApplyReport) -> Option<EngineError> {
    failure.map(|(step, source)| EngineError::Step {
        action: step.action.as_str(),
        id: step.id.clone(),
        done: report.done.len(),
        source,
    })
}

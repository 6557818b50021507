//! The Mesos framework: keeps every app at its instance count through the v1 scheduler API.
//!
//! One loop owns the subscription. It reacts to offers (launch what apps need, decline the
//! rest), status updates (track, acknowledge, back off failing apps), health results and a
//! tick (scale down, roll replacements, kill unhealthy or stuck tasks). HTTP handlers only
//! change the [`World`] and wake the loop.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use super::Shared;
use super::app::{AppSpec, HealthProtocol};
use super::model::{App, HealthResult, Task, World, timestamp};
use super::placement::{self, OfferView, Placed};
use super::store::TaskRecord;
use super::wire::TaskFailure;
use crate::mesos::scheduler::{Scheduler, master_url};
use crate::mesos::v1::{self, EventType, TaskState};

/// How long a declined offer stays away: short, so new apps launch within a second or so.
const REFUSE_SECONDS: f64 = 1.0;
/// At most this many tasks of one app per offer and round (Marathon's default).
const MAX_INSTANCES_PER_OFFER: u32 = 5;
/// A task running this long without failing resets its app's backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How often tasks still staging are reconciled again, and how long after their launch: a
/// launch lost in a Mesos master failover has no answer until its agent re-registers with
/// the new leader, and Mesos' reconciliation algorithm asks again until every task has one.
const RECONCILE_STAGING: Duration = Duration::from_secs(15);
/// A kill not yet confirmed by Mesos is sent again after this long (Marathon's
/// `--kill_retry_timeout` default).
const KILL_RETRY: Duration = Duration::from_secs(10);

struct HealthOutcome {
    task_id: String,
    index: usize,
    result: Result<(), String>,
}

/// Runs the framework until the process ends, resubscribing after master failovers.
pub async fn run(shared: Arc<Shared>) {
    let mut masters = crate::mesos::detector::detect(shared.config.master.clone(), shared.config.zk_session);
    let (health_tx, mut health_rx) = mpsc::unbounded_channel();
    let mut due: HashMap<(String, usize), Instant> = HashMap::new();
    loop {
        let info = loop {
            if let Some(info) = masters.borrow_and_update().clone() {
                break info;
            }
            if masters.changed().await.is_err() {
                return;
            }
        };
        let url = master_url(&info);
        let framework = v1::FrameworkInfo {
            user: "root".into(),
            name: shared.config.framework_name.clone(),
            id: shared.framework_id.lock().clone().map(v1::FrameworkId::new),
            failover_timeout: Some(7.0 * 24.0 * 3600.0),
            checkpoint: Some(true),
            hostname: Some(shared.config.hostname.clone()),
            webui_url: Some(format!("http://{}:{}", shared.config.hostname, shared.config.http_port)),
            ..Default::default()
        };
        let (scheduler, mut events) = match Scheduler::subscribe(&url, framework).await {
            Ok(subscribed) => subscribed,
            Err(e) => {
                tracing::warn!(master = %url, error = %e, "subscribing failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let framework_id = scheduler.framework_id.value.clone();
        *shared.mesos_leader.lock() = Some(url.clone());
        tracing::info!(master = %url, framework_id, "subscribed");
        if shared.framework_id.lock().as_deref() != Some(&framework_id) {
            *shared.framework_id.lock() = Some(framework_id.clone());
            if let Err(e) = shared.store.save_framework_id(&shared.zk, &framework_id).await {
                tracing::error!(error = %e, "cannot save the framework id");
            }
        }
        // Learn the state of every task we know of, without restarting any.
        let known: Vec<v1::ReconcileTask> = shared
            .world
            .lock()
            .tasks
            .values()
            .map(|t| v1::ReconcileTask {
                task_id: v1::TaskId::new(&t.id),
                agent_id: Some(v1::AgentId::new(&t.agent_id)),
            })
            .collect();
        if let Err(e) = scheduler.reconcile(known).await {
            tracing::warn!(error = %e, "explicit reconciliation failed");
        }
        let _ = scheduler.reconcile(Vec::new()).await;

        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut reconcile_staging = tokio::time::interval_at(tokio::time::Instant::now() + RECONCILE_STAGING, RECONCILE_STAGING);
        loop {
            tokio::select! {
                // Cancel-safe: a stream's next() loses nothing when another arm wins.
                event = events.next() => match event {
                    Some(Ok(event)) => on_event(&shared, &scheduler, event).await,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "event stream failed; resubscribing");
                        break;
                    }
                    None => {
                        tracing::warn!("event stream ended; resubscribing");
                        break;
                    }
                },
                // Cancel-safe: Notify keeps the permit for the next call if this arm loses.
                () = shared.wake.notified() => {
                    let _ = scheduler.revive().await;
                    act(&shared, &scheduler).await;
                }
                // Cancel-safe: an interval tick not taken now is taken on the next call.
                _ = tick.tick() => {
                    act(&shared, &scheduler).await;
                    schedule_health_checks(&shared, &mut due, &health_tx);
                }
                // Cancel-safe: an interval tick not taken now is taken on the next call.
                _ = reconcile_staging.tick() => {
                    let staging = staging_for(&shared.world.lock(), RECONCILE_STAGING);
                    if !staging.is_empty() && let Err(e) = scheduler.reconcile(staging).await {
                        tracing::warn!(error = %e, "reconciling staging tasks failed");
                    }
                }
                // Cancel-safe: recv() on an mpsc channel loses no message when dropped.
                Some(outcome) = health_rx.recv() => on_health(&shared, &scheduler, outcome).await,
                // Cancel-safe: watch::changed() only marks the value seen.
                changed = masters.changed() => {
                    if changed.is_err() { return; }
                    if masters.borrow().as_ref().map(master_url) != Some(url.clone()) {
                        tracing::info!("the Mesos leader changed; resubscribing");
                        break;
                    }
                }
            }
        }
    }
}

/// The tasks launched more than `after` ago that Mesos has not yet reported started.
fn staging_for(world: &World, after: Duration) -> Vec<v1::ReconcileTask> {
    world
        .tasks
        .values()
        .filter(|t| t.state == TaskState::Staging && t.staged_at.elapsed().unwrap_or_default() > after)
        .map(|t| v1::ReconcileTask {
            task_id: v1::TaskId::new(&t.id),
            agent_id: Some(v1::AgentId::new(&t.agent_id)),
        })
        .collect()
}

fn offer_view(offer: &v1::Offer) -> OfferView {
    let mut view = OfferView {
        hostname: offer.hostname.clone(),
        attributes: BTreeMap::new(),
        cpus: 0.0,
        mem: 0.0,
        disk: 0.0,
        ports: Vec::new(),
    };
    for r in &offer.resources {
        match (r.name.as_str(), &r.scalar, &r.ranges) {
            ("cpus", Some(s), _) => view.cpus += s.value,
            ("mem", Some(s), _) => view.mem += s.value,
            ("disk", Some(s), _) => view.disk += s.value,
            ("ports", _, Some(ranges)) => view.ports.extend(ranges.range.iter().map(|r| (r.begin, r.end))),
            _ => {}
        }
    }
    for a in &offer.attributes {
        let value = match (&a.text, &a.scalar) {
            (Some(t), _) => t.value.clone(),
            (_, Some(s)) => s.value.to_string(),
            _ => continue,
        };
        view.attributes.insert(a.name.clone(), value);
    }
    view
}

/// How many tasks an app should launch now.
fn wanted(world: &World, app: &App, now: Instant) -> u32 {
    if app.delayed_until.is_some_and(|t| t > now) {
        return 0;
    }
    let active: Vec<&Task> = world.tasks_of(&app.spec.id).filter(|t| t.is_active()).collect();
    let current = active.iter().filter(|t| t.version == app.config_version()).count() as u32;
    let need = app.spec.instances.saturating_sub(current);
    // While replacing, stay within maximumOverCapacity above the instance count.
    let over = (app.spec.maximum_over_capacity * app.spec.instances as f64).floor() as u32;
    let room =
        (app.spec.instances + over.max(if app.spec.minimum_health_capacity >= 1.0 { 1 } else { 0 })).saturating_sub(active.len() as u32);
    need.min(room)
}

fn task_info(app: &AppSpec, id: &str, agent_id: &v1::AgentId, ports: &[u64]) -> v1::TaskInfo {
    let mut resources = vec![v1::Resource::scalar("cpus", app.cpus), v1::Resource::scalar("mem", app.mem)];
    if app.disk > 0.0 {
        resources.push(v1::Resource::scalar("disk", app.disk));
    }
    if !ports.is_empty() {
        resources.push(v1::Resource::ranges(
            "ports",
            ports.iter().map(|&p| v1::Range { begin: p, end: p }).collect(),
        ));
    }
    let mut variables: Vec<v1::Variable> = app
        .env
        .iter()
        .map(|(k, v)| v1::Variable {
            name: k.clone(),
            kind: None,
            value: Some(v.clone()),
        })
        .collect();
    variables.push(v1::Variable {
        name: "MARATHON_APP_ID".into(),
        kind: None,
        value: Some(app.id.clone()),
    });
    let (shell, value, arguments) = match (&app.cmd, &app.docker) {
        (Some(cmd), _) => (true, Some(cmd.clone()), Vec::new()),
        // A Docker task's args follow the image's entrypoint; no args runs the image's command.
        (None, Some(_)) => (false, None, app.args.clone()),
        (None, None) => (false, app.args.first().cloned(), app.args.clone()),
    };
    if let Some(docker) = &app.docker {
        for (name, value) in super::container::ports_env(docker, ports) {
            variables.push(v1::Variable {
                name,
                kind: None,
                value: Some(value),
            });
        }
    }
    // Marathon sends at most one COMMAND check to Mesos: the first.
    let health_check = app
        .health_checks
        .iter()
        .find(|c| c.protocol == HealthProtocol::Command)
        .and_then(|c| {
            serde_json::to_value(v1::HealthCheck {
                kind: v1::HealthCheckType::Command,
                command: Some(v1::CommandInfo {
                    shell: Some(true),
                    value: c.command.clone(),
                    ..Default::default()
                }),
                delay_seconds: c.delay_secs,
                interval_seconds: c.interval_secs,
                timeout_seconds: c.timeout_secs,
                consecutive_failures: c.max_consecutive_failures,
                grace_period_seconds: c.grace_period_secs,
            })
            .ok()
        });
    let container = app
        .docker
        .as_ref()
        .and_then(|docker| serde_json::to_value(super::container::container_info(docker, ports)).ok());
    v1::TaskInfo {
        name: app.id.trim_start_matches('/').replace('/', "."),
        task_id: v1::TaskId::new(id),
        agent_id: agent_id.clone(),
        resources,
        command: Some(v1::CommandInfo {
            uris: app
                .uris
                .iter()
                .map(|(value, executable, extract)| v1::CommandUri {
                    value: value.clone(),
                    executable: Some(*executable),
                    extract: Some(*extract),
                    ..Default::default()
                })
                .collect(),
            environment: Some(v1::Environment { variables }),
            shell: Some(shell),
            value,
            arguments,
            user: None,
        }),
        container,
        health_check,
        kill_policy: app.kill_grace_secs.map(|seconds| v1::KillPolicy {
            grace_period: Some(v1::DurationInfo::from_secs_f64(seconds)),
        }),
        ..Default::default()
    }
}

async fn on_event(shared: &Arc<Shared>, scheduler: &Scheduler, event: v1::Event) {
    match event.kind {
        EventType::Offers => {
            if let Some(offers) = event.offers {
                on_offers(shared, scheduler, offers.offers).await;
            }
        }
        EventType::Update => {
            if let Some(update) = event.update {
                on_update(shared, scheduler, update.status).await;
            }
        }
        EventType::Error => {
            tracing::error!(message = ?event.error.map(|e| e.message), "the master refused the framework");
        }
        _ => {}
    }
}

async fn on_offers(shared: &Arc<Shared>, scheduler: &Scheduler, offers: Vec<v1::Offer>) {
    let now = Instant::now();
    let mut views: Vec<OfferView> = offers.iter().map(offer_view).collect();
    let mut launches: BTreeMap<usize, Vec<(Task, v1::TaskInfo)>> = BTreeMap::new();
    // Apps that wanted tasks, and how many offers each actually used (for the queue's summary).
    let mut wanting: Vec<String> = Vec::new();
    let mut used: BTreeMap<String, u64> = BTreeMap::new();
    {
        let world = shared.world.lock();
        for app in world.apps.values() {
            // Marathon's --max_instances_per_offer (5): a huge instance count launches in rounds.
            let want = wanted(&world, app, now).min(MAX_INSTANCES_PER_OFFER.saturating_mul(offers.len() as u32));
            if want == 0 {
                continue;
            }
            wanting.push(app.spec.id.clone());
            let placed: Vec<Placed> = world
                .tasks_of(&app.spec.id)
                .filter(|t| t.is_active())
                .map(|t| {
                    let attributes = offers
                        .iter()
                        .find(|o| o.agent_id.value == t.agent_id)
                        .map(|o| offer_view(o).attributes)
                        .unwrap_or_default();
                    Placed {
                        hostname: t.host.clone(),
                        attributes,
                    }
                })
                .collect();
            for launch in placement::place(&app.spec, want, &mut views, &placed) {
                let offer = &offers[launch.offer];
                let id = format!("{}.{}", app.spec.id.trim_start_matches('/').replace('/', "_"), uuid::Uuid::new_v4());
                let task = Task {
                    id: id.clone(),
                    app_id: app.spec.id.clone(),
                    agent_id: offer.agent_id.value.clone(),
                    host: offer.hostname.clone(),
                    ports: launch.ports.clone(),
                    version: app.config_version().to_owned(),
                    state: TaskState::Staging,
                    staged_at: SystemTime::now(),
                    started_at: None,
                    running_since: None,
                    health: vec![HealthResult::default(); app.spec.health_checks.len()],
                    killing: None,
                };
                let info = task_info(&app.spec, &id, &offer.agent_id, &launch.ports);
                launches.entry(launch.offer).or_default().push((task, info));
            }
        }
    }
    for (i, offer) in offers.iter().enumerate() {
        let Some(batch) = launches.remove(&i) else {
            let _ = scheduler.decline(vec![offer.id.clone()], REFUSE_SECONDS).await;
            continue;
        };
        // Record before launching: a task we launched but forgot would run unmanaged. A task
        // whose record failed is left out of the launch; the app asks again on a later offer.
        let batch = record_then_keep(shared, batch).await;
        if batch.is_empty() {
            let _ = scheduler.decline(vec![offer.id.clone()], REFUSE_SECONDS).await;
            continue;
        }
        let infos: Vec<v1::TaskInfo> = batch.iter().map(|(_, info)| info.clone()).collect();
        {
            let mut world = shared.world.lock();
            for (task, _) in &batch {
                world.tasks.insert(task.id.clone(), task.clone());
            }
        }
        let apps: std::collections::BTreeSet<&str> = batch.iter().map(|(t, _)| t.app_id.as_str()).collect();
        for app in apps {
            *used.entry(app.to_owned()).or_default() += 1;
        }
        if let Err(e) = scheduler.launch(vec![offer.id.clone()], infos, REFUSE_SECONDS).await {
            tracing::warn!(error = %e, "launch refused; the tasks will be reported lost");
        }
    }
    let mut world = shared.world.lock();
    for id in wanting {
        if let Some(app) = world.apps.get_mut(&id) {
            let used = used.get(&id).copied().unwrap_or(0);
            app.offers_processed += offers.len() as u64;
            app.offers_unused += offers.len() as u64 - used;
        }
    }
}

/// Saves each task's record and keeps only the tasks whose record was saved.
async fn record_then_keep(shared: &Shared, batch: Vec<(Task, v1::TaskInfo)>) -> Vec<(Task, v1::TaskInfo)> {
    let mut kept = Vec::with_capacity(batch.len());
    for (task, info) in batch {
        match shared.store.save_task(&shared.zk, &record_of(&task)).await {
            Ok(()) => kept.push((task, info)),
            Err(e) => tracing::error!(task = %task.id, error = %e, "cannot record a task; not launching it"),
        }
    }
    kept
}

fn record_of(task: &Task) -> TaskRecord {
    TaskRecord {
        id: task.id.clone(),
        app_id: task.app_id.clone(),
        agent_id: task.agent_id.clone(),
        host: task.host.clone(),
        ports: task.ports.clone(),
        version: task.version.clone(),
        staged_at: timestamp(task.staged_at),
        state: Some(task.state.as_str().to_owned()),
        started_at: task.started_at.map(timestamp),
    }
}

async fn on_update(shared: &Arc<Shared>, scheduler: &Scheduler, status: v1::TaskStatus) {
    if status.uuid.is_some() {
        let _ = scheduler.acknowledge(&status).await;
    }
    let id = status.task_id.value.clone();
    let state = status.state;
    let known = shared.world.lock().tasks.contains_key(&id);
    if !known {
        // A task this framework does not know (launched by a leader that died before
        // recording it): it must not run unmanaged.
        if !state.is_terminal() {
            let _ = scheduler.kill(status.task_id.clone(), status.agent_id.clone()).await;
        }
        return;
    }
    let (record, remove, orphan, event) = {
        let mut world = shared.world.lock();
        let Some(task) = world.tasks.get_mut(&id) else { return };
        let changed = task.state != state;
        task.state = state;
        if state == TaskState::Running && task.started_at.is_none() {
            task.started_at = Some(SystemTime::now());
        }
        if state == TaskState::Running && task.running_since.is_none() {
            task.running_since = Some(Instant::now());
        }
        let instance_event = changed.then(|| {
            json!({
                "eventType": "instance_changed_event",
                "timestamp": timestamp(SystemTime::now()),
                "instanceId": task.id,
                "condition": condition_of(state),
                "runSpecId": task.app_id,
                "agentId": task.agent_id,
                "host": task.host,
                "runSpecVersion": task.version,
                "goal": if task.killing.is_some() { "Stopped" } else { "Running" },
            })
        });
        let event = changed.then(|| {
            json!({
                "eventType": "status_update_event",
                "timestamp": timestamp(SystemTime::now()),
                "slaveId": task.agent_id,
                "taskId": task.id,
                "taskStatus": state.as_str(),
                "message": status.message.clone().unwrap_or_default(),
                "appId": task.app_id,
                "host": task.host,
                "ipAddresses": [{ "ipAddress": task.host, "protocol": "IPv4" }],
                "ports": task.ports,
                "version": task.version,
            })
        });
        let terminal = state.is_terminal() || state == TaskState::Unreachable;
        let task = task.clone();
        if terminal {
            world.tasks.remove(&id);
            if task.killing.is_none()
                && let Some(app) = world.apps.get_mut(&task.app_id)
            {
                app.failures += 1;
                app.delayed_until = Some(Instant::now() + app.backoff());
                app.last_task_failure = Some(TaskFailure {
                    app_id: task.app_id.clone(),
                    host: task.host.clone(),
                    message: status.message.clone().unwrap_or_default(),
                    state: state.as_str().to_owned(),
                    task_id: task.id.clone(),
                    timestamp: timestamp(SystemTime::now()),
                    version: task.version.clone(),
                    slave_id: task.agent_id.clone(),
                });
            }
        }
        (
            changed.then(|| record_of(&task)),
            terminal,
            state == TaskState::Unreachable,
            event.into_iter().chain(instance_event),
        )
    };
    if orphan {
        // Without partition awareness an unreachable task is given up and replaced.
        let _ = scheduler.kill(status.task_id.clone(), status.agent_id.clone()).await;
    }
    if remove {
        let _ = shared.store.delete_task(&shared.zk, &id).await;
    } else if let Some(record) = record {
        let _ = shared.store.save_task(&shared.zk, &record).await;
    }
    for event in event {
        let _ = shared.events.send(event);
    }
    // A COMMAND check's verdict comes from the agent, in the status update's `healthy`.
    if let Some(healthy) = status.healthy
        && !state.is_terminal()
    {
        let checks: Vec<usize> = {
            let world = shared.world.lock();
            let app = world.tasks.get(&id).and_then(|t| world.apps.get(&t.app_id));
            app.map(|a| {
                a.spec
                    .health_checks
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.protocol == HealthProtocol::Command)
                    .map(|(i, _)| i)
                    .collect()
            })
            .unwrap_or_default()
        };
        for index in checks {
            let result = if healthy {
                Ok(())
            } else {
                Err(status.message.clone().unwrap_or_else(|| "command check failed".into()))
            };
            on_health(
                shared,
                scheduler,
                HealthOutcome {
                    task_id: id.clone(),
                    index,
                    result,
                },
            )
            .await;
        }
    }
    shared.wake.notify_one();
}

/// Marathon's instance condition for a Mesos task state.
fn condition_of(state: TaskState) -> String {
    let name = state.as_str().trim_start_matches("TASK_").to_ascii_lowercase();
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Kills, scale-downs, replacements, timeouts and deployment bookkeeping.
async fn act(shared: &Arc<Shared>, scheduler: &Scheduler) {
    let now = Instant::now();
    let mut kills: Vec<(String, String)> = std::mem::take(&mut *shared.kills.lock());
    let mut finished = Vec::new();
    {
        let mut world = shared.world.lock();
        let launch_timeout = shared.config.task_launch_timeout;
        let apps: Vec<App> = world.apps.values().cloned().collect();
        let deleted: BTreeSet<String> = world.stopping.values().flat_map(|s| s.tasks.iter().cloned()).collect();
        for task in world.tasks.values_mut() {
            // A deleted app's task stays deleted even if an app of its id comes back.
            let orphaned = !apps.iter().any(|a| a.spec.id == task.app_id) || deleted.contains(&task.id);
            let stuck = matches!(task.state, TaskState::Staging | TaskState::Starting)
                && task.staged_at.elapsed().unwrap_or_default() > launch_timeout;
            let unconfirmed = task.killing.is_some_and(|at| now - at > KILL_RETRY);
            if (task.is_active() && (orphaned || stuck)) || unconfirmed {
                task.killing = Some(now);
                kills.push((task.id.clone(), task.agent_id.clone()));
            }
        }
        for app in &apps {
            let mut active: Vec<Task> = world.tasks_of(&app.spec.id).filter(|t| t.is_active()).cloned().collect();
            // Oldest first, so what lies beyond the instance count (killed) is the youngest.
            active.sort_by_key(|a| a.staged_at);
            let ready = |t: &Task| {
                t.state == TaskState::Running
                    && t.healthy() != Some(false)
                    && (app.spec.health_checks.is_empty() || t.healthy() == Some(true))
            };
            let (current, old): (Vec<Task>, Vec<Task>) = active.into_iter().partition(|t| t.version == app.config_version());
            let mut victims: Vec<Task> = current.iter().skip(app.spec.instances as usize).cloned().collect();
            // Rolling replacement: an old task goes only while enough ready tasks remain.
            let min_ready = (app.spec.minimum_health_capacity * app.spec.instances as f64).ceil() as usize;
            let mut ready_count =
                current.iter().take(app.spec.instances as usize).filter(|t| ready(t)).count() + old.iter().filter(|t| ready(t)).count();
            let surplus_old = (old.len() + current.len().min(app.spec.instances as usize)).saturating_sub(app.spec.instances as usize);
            for (i, t) in old.iter().rev().enumerate() {
                let not_ready = !ready(t);
                if i < surplus_old && (not_ready || ready_count > min_ready) {
                    if !not_ready {
                        ready_count -= 1;
                    }
                    victims.push(t.clone());
                } else if app.spec.instances == 0 {
                    victims.push(t.clone());
                }
            }
            for v in victims {
                if let Some(t) = world.tasks.get_mut(&v.id) {
                    t.killing = Some(now);
                    kills.push((t.id.clone(), t.agent_id.clone()));
                }
            }
            if app.failures > 0
                && world
                    .tasks_of(&app.spec.id)
                    .any(|t| t.running_since.is_some_and(|s| now - s > STABLE_AFTER))
                && let Some(a) = world.apps.get_mut(&app.spec.id)
            {
                a.failures = 0;
            }
        }
        let ids: Vec<String> = world.apps.keys().cloned().collect();
        for id in ids {
            let app = world.apps[&id].clone();
            if app.deployment.is_some() && world.converged(&app) {
                let a = world.apps.get_mut(&id).expect("listed");
                finished.push((
                    a.deployment.take().expect("checked"),
                    id.clone(),
                    a.version.clone(),
                    "ScaleApplication",
                ));
                a.replacing = false;
            }
        }
        // A deleted app's deployment ends once Mesos has reported each of its tasks gone.
        let stopped: Vec<String> = world
            .stopping
            .iter()
            .filter(|(_, s)| !s.tasks.iter().any(|t| world.tasks.contains_key(t)))
            .map(|(id, _)| id.clone())
            .collect();
        for deployment in stopped {
            let s = world.stopping.remove(&deployment).expect("listed");
            finished.push((deployment, s.app.spec.id, s.version, "StopApplication"));
        }
    }
    for (task_id, agent_id) in kills {
        let _ = scheduler.kill(v1::TaskId::new(&task_id), Some(v1::AgentId::new(&agent_id))).await;
    }
    for (deployment, app, version, action) in finished {
        if action == "StopApplication" {
            let _ = shared.events.send(json!({
                "eventType": "app_terminated_event",
                "appId": app,
                "timestamp": timestamp(SystemTime::now()),
            }));
        }
        let plan = super::model::event_plan(&deployment, &version, Some((action, &app)));
        let _ = shared.events.send(json!({
            "eventType": "deployment_step_success",
            "plan": plan,
            "currentStep": { "actions": [{ "action": action, "app": app }] },
            "timestamp": timestamp(SystemTime::now()),
        }));
        let _ = shared.events.send(json!({
            "eventType": "deployment_success",
            "id": deployment,
            "plan": plan,
            "timestamp": timestamp(SystemTime::now()),
        }));
    }
}

fn schedule_health_checks(
    shared: &Arc<Shared>,
    due: &mut HashMap<(String, usize), Instant>,
    results: &mpsc::UnboundedSender<HealthOutcome>,
) {
    let now = Instant::now();
    let world = shared.world.lock();
    due.retain(|(id, _), _| world.tasks.contains_key(id));
    for task in world
        .tasks
        .values()
        .filter(|t| t.state == TaskState::Running && t.killing.is_none())
    {
        let Some(app) = world.apps.get(&task.app_id) else { continue };
        // COMMAND checks run on the agent; their results come with the status updates.
        let own = app
            .spec
            .health_checks
            .iter()
            .enumerate()
            .filter(|(_, c)| c.protocol != HealthProtocol::Command);
        for (index, check) in own {
            let next = due.entry((task.id.clone(), index)).or_insert(now);
            if *next > now {
                continue;
            }
            // Checked on input to be at most i32::MAX seconds; still, never panic on a duration.
            *next = now + Duration::try_from_secs_f64(check.interval_secs).unwrap_or(Duration::from_secs(60));
            let Some(&port) = task.ports.get(check.port_index) else { continue };
            let (host, path, protocol, timeout) = (
                task.host.clone(),
                check.path.clone(),
                check.protocol,
                Duration::try_from_secs_f64(check.timeout_secs).unwrap_or(Duration::from_secs(20)),
            );
            let (tx, task_id) = (results.clone(), task.id.clone());
            let http = shared.http.clone();
            tokio::spawn(async move {
                let result = match protocol {
                    HealthProtocol::Http => {
                        match tokio::time::timeout(timeout, http.get(format!("http://{host}:{port}{path}")).send()).await {
                            Ok(Ok(r)) if r.status().as_u16() < 400 => Ok(()),
                            Ok(Ok(r)) => Err(format!("HTTP {}", r.status().as_u16())),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err("timed out".into()),
                        }
                    }
                    HealthProtocol::Tcp => {
                        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host.as_str(), port as u16))).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(_) => Err("timed out".into()),
                        }
                    }
                    HealthProtocol::Command => return,
                };
                let _ = tx.send(HealthOutcome { task_id, index, result });
            });
        }
    }
}

async fn on_health(shared: &Arc<Shared>, scheduler: &Scheduler, outcome: HealthOutcome) {
    let mut kill = None;
    let mut event = None;
    let mut failed = None;
    {
        let mut world = shared.world.lock();
        let Some(task) = world.tasks.get(&outcome.task_id).cloned() else {
            return;
        };
        let Some(check) = world
            .apps
            .get(&task.app_id)
            .and_then(|a| a.spec.health_checks.get(outcome.index).cloned())
        else {
            return;
        };
        let task = world.tasks.get_mut(&outcome.task_id).expect("present");
        let Some(result) = task.health.get_mut(outcome.index) else { return };
        let was = (result.checked, result.alive);
        let now = SystemTime::now();
        match outcome.result {
            Ok(()) => {
                result.alive = true;
                result.consecutive_failures = 0;
                result.last_success = Some(now);
                result.first_success.get_or_insert(now);
                result.checked = true;
            }
            Err(cause) => {
                let in_grace = result.first_success.is_none()
                    && task
                        .running_since
                        .is_some_and(|s| s.elapsed().as_secs_f64() < check.grace_period_secs);
                if !in_grace {
                    failed = Some(json!({
                        "eventType": "failed_health_check_event",
                        "appId": task.app_id,
                        "taskId": task.id,
                        "instanceId": task.id,
                        "version": task.version,
                        "healthCheck": {
                            "protocol": match check.protocol {
                                HealthProtocol::Http => "HTTP",
                                HealthProtocol::Tcp => "TCP",
                                HealthProtocol::Command => "COMMAND",
                            },
                            "path": check.path,
                            "portIndex": check.port_index,
                            "gracePeriodSeconds": check.grace_period_secs,
                            "intervalSeconds": check.interval_secs,
                            "timeoutSeconds": check.timeout_secs,
                            "maxConsecutiveFailures": check.max_consecutive_failures,
                        },
                        "timestamp": timestamp(now),
                    }));
                    result.alive = false;
                    result.consecutive_failures += 1;
                    result.last_failure = Some(now);
                    result.last_failure_cause = Some(cause);
                    result.checked = true;
                    if check.max_consecutive_failures > 0
                        && result.consecutive_failures >= check.max_consecutive_failures
                        && task.killing.is_none()
                    {
                        task.killing = Some(Instant::now());
                        kill = Some((task.id.clone(), task.agent_id.clone()));
                    }
                }
            }
        }
        let result = &task.health[outcome.index];
        if (result.checked, result.alive) != was && result.checked {
            event = Some(json!({
                "eventType": "health_status_changed_event",
                "appId": task.app_id,
                "taskId": task.id,
                "instanceId": task.id,
                "version": task.version,
                "alive": result.alive,
                "timestamp": timestamp(now),
            }));
        }
    }
    for event in failed.into_iter().chain(event) {
        let _ = shared.events.send(event);
    }
    if let Some((task_id, agent_id)) = kill {
        tracing::info!(task_id, "killing a task that failed its health checks");
        let _ = scheduler.kill(v1::TaskId::new(&task_id), Some(v1::AgentId::new(&agent_id))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, state: TaskState, age: Duration) -> Task {
        Task {
            id: id.into(),
            app_id: "/www".into(),
            agent_id: "agent-1".into(),
            host: "10.0.0.1".into(),
            ports: vec![],
            version: "v1".into(),
            state,
            staged_at: SystemTime::now() - age,
            started_at: None,
            running_since: None,
            health: vec![],
            killing: None,
        }
    }

    #[test]
    fn only_tasks_staging_longer_than_the_wait_are_reconciled_again() {
        let mut world = World::default();
        for t in [
            task("lost-launch", TaskState::Staging, Duration::from_secs(40)),
            task("just-launched", TaskState::Staging, Duration::from_secs(2)),
            task("started", TaskState::Running, Duration::from_secs(40)),
        ] {
            world.tasks.insert(t.id.clone(), t);
        }
        let asked: Vec<String> = staging_for(&world, RECONCILE_STAGING)
            .into_iter()
            .map(|r| r.task_id.value)
            .collect();
        assert_eq!(asked, vec!["lost-launch".to_string()]);
    }
}

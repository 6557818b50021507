//! What a chaos run measured: every request, the platform as observed each second, the fault
//! intervals, and per fault the availability, latency, recovery and its phases. Pure
//! functions over the recorded samples and views, so they are tested without a cluster.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::fault::FaultPlan;
use crate::platform::ClusterView;
use crate::probe::Sample;

/// The platform at one instant, reduced to what the report needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewPoint {
    pub t_ms: u64,
    /// App id → (instances, serving), or `None` when Marathon did not answer.
    pub apps: Option<BTreeMap<String, (u32, u32)>>,
    /// Task id → the agent address it runs on, over every app.
    pub tasks: BTreeMap<String, String>,
    pub mesos_leader: Option<String>,
    pub marathon_leader: Option<String>,
    pub zookeeper_leader: Option<String>,
    pub agents_registered: u32,
}

impl ViewPoint {
    pub fn of(t_ms: u64, view: &ClusterView) -> ViewPoint {
        ViewPoint {
            t_ms,
            apps: view
                .apps
                .as_ref()
                .map(|apps| apps.iter().map(|a| (a.id.clone(), (a.instances, a.serving()))).collect()),
            tasks: view.apps.iter().flatten().flat_map(|a| a.tasks.clone()).collect(),
            mesos_leader: view.mesos_leader.clone(),
            marathon_leader: view.marathon_leader.clone(),
            zookeeper_leader: view.zookeeper_leader.clone(),
            agents_registered: view.agents_registered,
        }
    }

    fn all_running(&self) -> bool {
        let wanted: u32 = self.apps.iter().flat_map(|a| a.values()).map(|(want, _)| want).sum();
        self.apps.is_some() && self.tasks.len() as u32 >= wanted
    }

    fn all_serving(&self) -> bool {
        self.apps
            .as_ref()
            .is_some_and(|apps| apps.values().all(|(want, serving)| serving >= want))
    }

    fn none_on(&self, lost: &[String]) -> bool {
        self.apps.is_some() && self.tasks.values().all(|h| !lost.contains(h))
    }
}

/// Where the recovery time went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub name: String,
    pub seconds: f64,
}

/// A steady-state check and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub fn passed(name: &str, detail: &str) -> Check {
        Check {
            name: name.into(),
            passed: true,
            detail: detail.into(),
        }
    }

    pub fn failed(name: &str, detail: &str) -> Check {
        Check {
            name: name.into(),
            passed: false,
            detail: detail.into(),
        }
    }
}

/// Latency quantiles of the successful requests, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// What one fault did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultResult {
    pub description: String,
    pub targets: Vec<String>,
    /// Seconds from the session's start.
    pub start: f64,
    /// End of the measured window: recovery, or the heal if later, or the give-up time.
    pub end: f64,
    pub heal: Option<f64>,
    /// Requests of the schedule within the window, sent or not.
    pub requests: u64,
    /// Requests not answered 2xx/3xx, the unsent included.
    pub failed: u64,
    /// Requests the probe could not send on time (counted in `failed`).
    #[serde(default)]
    pub not_sent: u64,
    /// Percent of the scheduled requests answered 2xx/3xx within the window.
    pub availability: Option<f64>,
    pub latency: Latency,
    /// Seconds until every app served at its count, routed by every lb; `None` if it did not.
    pub recovery_seconds: Option<f64>,
    /// Whether the recovery is counted from the heal (timed faults) or from the fault.
    pub recovery_from_heal: bool,
    pub phases: Vec<Phase>,
    /// What was still missing when the wait gave up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrecovered: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_note: Option<String>,
    /// Tasks running before the fault and gone at its end, and tasks started since.
    pub tasks_lost: u32,
    pub tasks_started: u32,
    /// Leader changes seen within the window, by component.
    pub leader_changes: BTreeMap<String, u32>,
    /// Distinct answers (tasks) that served requests in the window.
    pub answering_tasks: u32,
}

/// Inputs of [`fault_result`].
pub struct FaultWindow<'a> {
    pub plan: &'a FaultPlan,
    pub start: f64,
    pub end: f64,
    pub heal: Option<f64>,
    pub recovery_seconds: Option<f64>,
    pub recovery_from_heal: bool,
    pub unrecovered: Vec<String>,
    pub samples: &'a [Sample],
    pub views: &'a [ViewPoint],
    pub baseline_tasks: &'a [String],
    pub capacity_note: Option<String>,
}

/// Percent of `samples` that succeeded.
pub fn availability<'s>(samples: impl Iterator<Item = &'s Sample>) -> Option<f64> {
    let (mut total, mut ok) = (0u64, 0u64);
    for s in samples {
        total += 1;
        ok += u64::from(s.ok());
    }
    (total > 0).then(|| ok as f64 * 100.0 / total as f64)
}

/// Nearest-rank quantiles.
pub fn latency(mut values: Vec<f64>) -> Latency {
    if values.is_empty() {
        return Latency::default();
    }
    values.sort_by(f64::total_cmp);
    let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    Latency {
        p50: rank(0.5),
        p99: rank(0.99),
        max: *values.last().expect("not empty"),
    }
}

pub fn fault_result(w: FaultWindow<'_>) -> FaultResult {
    let (start_ms, end_ms) = ((w.start * 1000.0) as u64, (w.end * 1000.0).ceil() as u64);
    let window: Vec<&Sample> = w.samples.iter().filter(|s| s.t_ms >= start_ms && s.t_ms <= end_ms).collect();
    let failed = window.iter().filter(|s| !s.ok()).count() as u64;
    let views: Vec<&ViewPoint> = w.views.iter().filter(|v| v.t_ms >= start_ms && v.t_ms <= end_ms).collect();
    // Leaders are compared with the last ones seen before the fault: a leader killed at once
    // may never be seen inside the window.
    let before = w.views.iter().rfind(|v| v.t_ms < start_ms);
    let mut leader_changes = BTreeMap::new();
    for (component, leader) in [
        (
            "mesos",
            (|v: &ViewPoint| v.mesos_leader.clone()) as fn(&ViewPoint) -> Option<String>,
        ),
        ("marathon", |v: &ViewPoint| v.marathon_leader.clone()),
        ("zookeeper", |v: &ViewPoint| v.zookeeper_leader.clone()),
    ] {
        // A leader that goes missing and comes back is not a change; a new one is.
        let known: Vec<String> = before.into_iter().chain(views.iter().copied()).filter_map(leader).collect();
        let changes = known.windows(2).filter(|pair| pair[0] != pair[1]).count() as u32;
        leader_changes.insert(component.to_string(), changes);
    }
    let (tasks_lost, tasks_started) = match views.iter().rev().find(|v| v.apps.is_some()) {
        Some(last) => (
            w.baseline_tasks.iter().filter(|t| !last.tasks.contains_key(*t)).count() as u32,
            last.tasks.keys().filter(|t| !w.baseline_tasks.contains(t)).count() as u32,
        ),
        None => (0, 0),
    };
    let answering: BTreeSet<&str> = window.iter().filter(|s| s.ok()).filter_map(|s| s.answer.as_deref()).collect();
    FaultResult {
        description: w.plan.description.clone(),
        targets: w.plan.targets.clone(),
        start: w.start,
        end: w.end,
        heal: w.heal,
        requests: window.len() as u64,
        failed,
        not_sent: window.iter().filter(|s| s.not_sent).count() as u64,
        availability: availability(window.iter().copied()),
        latency: latency(window.iter().filter(|s| s.ok()).map(|s| s.latency_ms).collect()),
        recovery_seconds: w.recovery_seconds,
        recovery_from_heal: w.recovery_from_heal,
        phases: phases(&views, start_ms, &w.plan.lost_slaves, w.recovery_seconds, w.recovery_from_heal),
        unrecovered: w.unrecovered,
        capacity_note: w.capacity_note,
        tasks_lost,
        tasks_started,
        leader_changes,
        answering_tasks: answering.len() as u32,
    }
}

/// Splits the recovery after a node loss into: the platform noticing (no task left on the
/// lost slaves), relaunching (every app has its instance count of tasks), health checks
/// passing, and the lbs routing to every instance.
fn phases(views: &[&ViewPoint], start_ms: u64, lost: &[String], recovery: Option<f64>, from_heal: bool) -> Vec<Phase> {
    let Some(total) = recovery else { return Vec::new() };
    if from_heal || lost.is_empty() {
        return Vec::new();
    }
    let at = |pred: &dyn Fn(&ViewPoint) -> bool, after: f64| -> f64 {
        views
            .iter()
            .filter(|v| (v.t_ms - start_ms) as f64 / 1000.0 >= after)
            .find(|v| pred(v))
            .map(|v| (v.t_ms - start_ms) as f64 / 1000.0)
            .unwrap_or(total)
            .min(total)
    };
    let detected = at(&|v| v.none_on(lost), 0.0);
    let running = at(&|v| v.none_on(lost) && v.all_running(), detected);
    let serving = at(&|v| v.none_on(lost) && v.all_running() && v.all_serving(), running);
    vec![
        Phase {
            name: "lost nodes' tasks declared gone".into(),
            seconds: detected,
        },
        Phase {
            name: "tasks relaunched".into(),
            seconds: running - detected,
        },
        Phase {
            name: "health checks passing".into(),
            seconds: serving - running,
        },
        Phase {
            name: "lbs routing every instance".into(),
            seconds: total - serving,
        },
    ]
}

/// When recovery failed after slaves were lost: whether what is left can hold the apps.
pub fn capacity_note(view: &ClusterView, per_agent: (f64, f64), plan: &FaultPlan) -> Option<String> {
    let apps = view.apps.as_ref()?;
    let cpus: f64 = apps.iter().map(|a| a.cpus * f64::from(a.instances)).sum();
    let mem: f64 = apps.iter().map(|a| a.mem * f64::from(a.instances)).sum();
    let agents = f64::from(view.agents_registered);
    let (have_cpus, have_mem) = (per_agent.0 * agents, per_agent.1 * agents);
    if cpus > have_cpus + 1e-9 || mem > have_mem + 1e-9 {
        Some(format!(
            "capacity short: the apps need {cpus:.1} cpus and {mem:.0} MiB; the {} registered agents left after {} offer {have_cpus:.1} cpus and {have_mem:.0} MiB",
            view.agents_registered, plan.description
        ))
    } else {
        Some(format!(
            "capacity suffices ({cpus:.1} of {have_cpus:.1} cpus, {mem:.0} of {have_mem:.0} MiB on {} agents): the placement constraints or the platform kept instances from starting",
            view.agents_registered
        ))
    }
}

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub t: u64,
    pub requests: u32,
    pub ok: u32,
    /// Requests due within the second that the probe could not send (counted in `requests`).
    #[serde(default)]
    pub not_sent: u32,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// App id → serving instances (last view within the second).
    pub serving: BTreeMap<String, u32>,
}

/// Per-second series of the samples and views.
pub fn seconds(samples: &[Sample], views: &[ViewPoint]) -> Vec<Second> {
    let last = samples
        .iter()
        .map(|s| s.t_ms / 1000)
        .chain(views.iter().map(|v| v.t_ms / 1000))
        .max()
        .unwrap_or(0);
    let mut serving = BTreeMap::new();
    (0..=last)
        .map(|t| {
            let within: Vec<&Sample> = samples.iter().filter(|s| s.t_ms / 1000 == t).collect();
            if let Some(v) = views.iter().rev().find(|v| v.t_ms / 1000 == t)
                && let Some(apps) = &v.apps
            {
                serving = apps.iter().map(|(id, (_, s))| (id.clone(), *s)).collect();
            }
            let l = latency(within.iter().filter(|s| s.ok()).map(|s| s.latency_ms).collect());
            Second {
                t,
                requests: within.len() as u32,
                ok: within.iter().filter(|s| s.ok()).count() as u32,
                not_sent: within.iter().filter(|s| s.not_sent).count() as u32,
                p50_ms: l.p50,
                p99_ms: l.p99,
                max_ms: l.max,
                serving: serving.clone(),
            }
        })
        .collect()
}

/// Everything a run recorded; written as JSON next to the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub name: String,
    pub backend: String,
    pub seed: u64,
    pub started_unix_ms: u64,
    pub entry: String,
    pub rate: u32,
    pub vhosts: Vec<String>,
    pub interrupted: bool,
    pub passed: bool,
    pub faults: Vec<FaultResult>,
    pub checks: Vec<Check>,
    /// (seconds since start, what happened).
    pub events: Vec<(f64, String)>,
    pub seconds: Vec<Second>,
    pub views: Vec<ViewPoint>,
    pub requests: Vec<Sample>,
}

/// Inputs of [`assemble`].
pub struct Assembly {
    pub name: String,
    pub backend: &'static str,
    pub seed: u64,
    pub started_unix_ms: u64,
    pub entry: String,
    pub rate: u32,
    pub vhosts: Vec<String>,
    pub samples: Vec<Sample>,
    pub views: Vec<ViewPoint>,
    pub events: Vec<(f64, String)>,
    pub results: Vec<FaultResult>,
    pub checks: Vec<Check>,
    pub interrupted: bool,
}

pub fn assemble(a: Assembly) -> Journal {
    Journal {
        seconds: seconds(&a.samples, &a.views),
        passed: !a.interrupted && a.checks.iter().all(|c| c.passed),
        name: a.name,
        backend: a.backend.to_string(),
        seed: a.seed,
        started_unix_ms: a.started_unix_ms,
        entry: a.entry,
        rate: a.rate,
        vhosts: a.vhosts,
        interrupted: a.interrupted,
        faults: a.results,
        checks: a.checks,
        events: a.events,
        views: a.views,
        requests: a.samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultPlan;

    fn sample(t_ms: u64, status: u16, latency_ms: f64, answer: &str) -> Sample {
        Sample {
            t_ms,
            app: 0,
            status,
            latency_ms,
            answer: Some(answer.into()),
            not_sent: false,
        }
    }

    /// www wants 2; tasks on `hosts` (task id = host), `serving` of them healthy.
    fn point(t_ms: u64, hosts: &[&str], serving: u32, mesos: &str) -> ViewPoint {
        ViewPoint {
            t_ms,
            apps: Some([("/www".to_string(), (2, serving))].into()),
            tasks: hosts.iter().map(|h| (format!("www.{h}"), h.to_string())).collect(),
            mesos_leader: Some(mesos.into()),
            marathon_leader: Some("master-1".into()),
            zookeeper_leader: Some("master-1".into()),
            agents_registered: 2,
        }
    }

    fn plan() -> FaultPlan {
        FaultPlan {
            description: "kill role=slave count=1".into(),
            targets: vec!["slave-1".into()],
            effects: vec![],
            rolling: false,
            lost_slaves: vec!["a".into()],
            lost_lbs: vec![],
        }
    }

    #[test]
    fn a_leader_lost_before_the_first_view_of_the_fault_is_still_a_change() {
        // The leader is killed at t=1.0; no master names a leader until master-2 leads at t=3.
        let mut gap = point(2_000, &["a", "b"], 2, "master-1");
        gap.mesos_leader = None;
        let views = [
            point(500, &["a", "b"], 2, "master-1"),
            gap,
            point(3_000, &["a", "b"], 2, "master-2"),
        ];
        let r = fault_result(FaultWindow {
            plan: &plan(),
            start: 1.0,
            end: 4.0,
            heal: None,
            recovery_seconds: Some(2.0),
            recovery_from_heal: false,
            unrecovered: vec![],
            samples: &[],
            views: &views,
            baseline_tasks: &["www.a".to_string(), "www.b".to_string()],
            capacity_note: None,
        });
        assert_eq!(r.leader_changes["mesos"], 1);
        assert_eq!(r.leader_changes["marathon"], 0);
    }

    #[test]
    fn a_fault_is_measured_over_its_window_only() {
        let samples = [
            sample(500, 200, 1.0, "www 1"),
            sample(1_500, 502, 9.0, ""),
            sample(2_000, 200, 30.0, "www 2"),
            sample(3_000, 200, 10.0, "www 1"),
            sample(9_000, 0, 5000.0, ""),
        ];
        // Before: tasks on a and b. Then a is declared gone (t=2), b' relaunched (t=3), healthy (t=4).
        let views = [
            point(1_000, &["a", "b"], 2, "master-1"),
            point(2_000, &["b"], 1, "master-2"),
            point(3_000, &["b", "c"], 1, "master-2"),
            point(4_000, &["b", "c"], 2, "master-2"),
        ];
        let r = fault_result(FaultWindow {
            plan: &plan(),
            start: 1.0,
            end: 4.5,
            heal: None,
            recovery_seconds: Some(3.5),
            recovery_from_heal: false,
            unrecovered: vec![],
            samples: &samples,
            views: &views,
            baseline_tasks: &["www.a".to_string(), "www.b".to_string()],
            capacity_note: None,
        });
        assert_eq!((r.requests, r.failed), (3, 1));
        assert!((r.availability.unwrap() - 200.0 / 3.0).abs() < 1e-9);
        assert_eq!((r.latency.p50, r.latency.max), (10.0, 30.0));
        assert_eq!((r.tasks_lost, r.tasks_started), (1, 1));
        assert_eq!(r.leader_changes["mesos"], 1);
        assert_eq!(r.leader_changes["marathon"], 0);
        assert_eq!(r.answering_tasks, 2);
        let phases: Vec<(&str, f64)> = r.phases.iter().map(|p| (p.name.as_str(), p.seconds)).collect();
        assert_eq!(
            phases,
            [
                ("lost nodes' tasks declared gone", 1.0),
                ("tasks relaunched", 1.0),
                ("health checks passing", 1.0),
                ("lbs routing every instance", 0.5)
            ]
        );
    }

    #[test]
    fn requests_not_sent_count_against_availability_and_are_reported() {
        let samples = [
            sample(1_100, 200, 1.0, "www 1"),
            Sample::not_sent(1_200, 0),
            Sample::not_sent(1_300, 0),
            sample(1_400, 200, 2.0, "www 2"),
        ];
        let r = fault_result(FaultWindow {
            plan: &plan(),
            start: 1.0,
            end: 2.0,
            heal: None,
            recovery_seconds: Some(1.0),
            recovery_from_heal: false,
            unrecovered: vec![],
            samples: &samples,
            views: &[],
            baseline_tasks: &[],
            capacity_note: None,
        });
        assert_eq!((r.requests, r.failed, r.not_sent), (4, 2, 2));
        assert_eq!(r.availability, Some(50.0));
        // Unsent requests have no latency to count.
        assert_eq!(r.latency.max, 2.0);
        let second = &seconds(&samples, &[])[1];
        assert_eq!((second.requests, second.ok, second.not_sent), (4, 2, 2));
        // A journal written before the count existed still reads.
        let mut old = serde_json::to_value(&r).unwrap();
        old.as_object_mut().unwrap().remove("not_sent");
        assert_eq!(serde_json::from_value::<FaultResult>(old).unwrap().not_sent, 0);
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let l = latency((1..=100).map(f64::from).collect());
        assert_eq!((l.p50, l.p99, l.max), (50.0, 99.0, 100.0));
        assert_eq!(latency(vec![]), Latency::default());
    }

    #[test]
    fn seconds_carry_requests_and_the_last_serving_count() {
        let samples = [sample(100, 200, 1.0, "x"), sample(900, 503, 1.0, ""), sample(2_100, 200, 3.0, "x")];
        let views = [point(500, &["a", "b"], 2, "m"), point(1_500, &["a"], 1, "m")];
        let s = seconds(&samples, &views);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].requests, s[0].ok, s[0].serving["/www"]), (2, 1, 2));
        assert_eq!((s[1].requests, s[1].serving["/www"]), (0, 1));
        assert_eq!((s[2].requests, s[2].ok, s[2].p50_ms), (1, 1, 3.0));
    }

    #[test]
    fn the_report_shades_each_fault_and_lists_the_checks() {
        let samples = [sample(100, 200, 1.0, "x"), sample(2_100, 200, 3.0, "x")];
        let views = [point(500, &["a", "b"], 2, "m")];
        let mut journal = assemble(Assembly {
            name: "demo <run>".into(),
            backend: "memory",
            seed: 7,
            started_unix_ms: 0,
            entry: "127.0.0.1:8080".into(),
            rate: 10,
            vhosts: vec!["www.test".into()],
            samples: samples.to_vec(),
            views: views.to_vec(),
            events: vec![],
            results: vec![],
            checks: vec![Check::failed("availability (kill)", "90% of 10")],
            interrupted: false,
        });
        assert!(!journal.passed);
        journal.faults.push(fault_result(FaultWindow {
            plan: &plan(),
            start: 0.0,
            end: 2.5,
            heal: None,
            recovery_seconds: Some(1.0),
            recovery_from_heal: false,
            unrecovered: vec![],
            samples: &samples,
            views: &views,
            baseline_tasks: &[],
            capacity_note: None,
        }));
        let svg = crate::report::svg(&journal);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("demo &lt;run&gt; — hypothesis FAILED"));
        assert_eq!(svg.matches("fill=\"#d62728\" fill-opacity").count(), 3, "one band per panel");
        assert!(svg.contains("✗ availability (kill): 90% of 10"));
        assert!(svg.contains("kill role=slave count=1: availability 100.000%, p99"));
        journal.faults[0].not_sent = 3;
        journal.faults[0].availability = Some(97.0);
        let svg = crate::report::svg(&journal);
        assert!(
            svg.contains("kill role=slave count=1: availability 97.000% (not sent: 3), p99"),
            "{svg}"
        );
    }
}

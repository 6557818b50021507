//! The steady-state hypothesis a run is held to: what must stay true through each fault.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::journal::{Check, FaultResult};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Hypothesis {
    /// Percent of probe requests that must succeed during each fault's window.
    pub min_availability: Option<f64>,
    /// Every app back at its instance count, healthy and routed by every lb within this.
    #[serde(with = "crate::duration_opt")]
    pub recover_within: Option<Duration>,
    /// p99 latency of successful requests during each fault, in milliseconds.
    pub max_p99_ms: Option<f64>,
}

impl Hypothesis {
    /// The checks of one fault's result. Recovery is always checked: a fault the platform
    /// did not recover from fails the run.
    pub fn check(&self, result: &FaultResult) -> Vec<Check> {
        let mut checks = Vec::new();
        let name = |what: &str| format!("{what} ({})", result.description);
        match result.recovery_seconds {
            Some(seconds) => {
                let within = self.recover_within.map(|d| d.as_secs_f64());
                let detail = format!(
                    "recovered in {seconds:.1}s after the {}{}",
                    if result.recovery_from_heal { "heal" } else { "fault" },
                    within.map(|w| format!(" (allowed {w:.0}s)")).unwrap_or_default()
                );
                if within.is_some_and(|w| seconds > w) {
                    checks.push(Check::failed(&name("recovery"), &detail));
                } else {
                    checks.push(Check::passed(&name("recovery"), &detail));
                }
            }
            None => {
                let mut detail = format!("not recovered: {}", result.unrecovered.join("; "));
                if let Some(note) = &result.capacity_note {
                    detail.push_str(&format!(" ({note})"));
                }
                checks.push(Check::failed(&name("recovery"), &detail));
            }
        }
        if let Some(min) = self.min_availability {
            let check = match result.availability {
                Some(a) => {
                    let detail = format!("{a:.3}% of {} requests succeeded (at least {min}% wanted)", result.requests);
                    if a + 1e-9 >= min {
                        Check::passed(&name("availability"), &detail)
                    } else {
                        Check::failed(&name("availability"), &detail)
                    }
                }
                None => Check::failed(&name("availability"), "no request was sent during the fault: nothing to judge"),
            };
            checks.push(check);
        }
        if let Some(max) = self.max_p99_ms {
            let p99 = result.latency.p99;
            let detail = format!("p99 {p99:.0} ms (at most {max:.0} ms wanted)");
            checks.push(if p99 <= max {
                Check::passed(&name("latency"), &detail)
            } else {
                Check::failed(&name("latency"), &detail)
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Latency;

    fn result(availability: f64, recovery: Option<f64>) -> FaultResult {
        FaultResult {
            description: "kill role=slave count=4".into(),
            targets: vec![],
            start: 0.0,
            end: 10.0,
            heal: None,
            requests: 1000,
            failed: 0,
            not_sent: 0,
            availability: Some(availability),
            latency: Latency {
                p50: 3.0,
                p99: 900.0,
                max: 2000.0,
            },
            recovery_seconds: recovery,
            recovery_from_heal: false,
            phases: vec![],
            unrecovered: if recovery.is_none() {
                vec!["/www 1 of 5 serving".into()]
            } else {
                vec![]
            },
            capacity_note: None,
            tasks_lost: 0,
            tasks_started: 0,
            leader_changes: Default::default(),
            answering_tasks: 0,
        }
    }

    #[test]
    fn each_bound_passes_at_its_limit_and_fails_beyond_it() {
        let h = Hypothesis {
            min_availability: Some(99.9),
            recover_within: Some(Duration::from_secs(90)),
            max_p99_ms: Some(900.0),
        };
        assert!(h.check(&result(99.9, Some(90.0))).iter().all(|c| c.passed));
        let failed: Vec<String> = h
            .check(&result(99.89, Some(90.5)))
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            ["recovery (kill role=slave count=4)", "availability (kill role=slave count=4)"]
        );
    }

    #[test]
    fn no_recovery_fails_even_without_a_bound_and_says_what_was_missing() {
        let checks = Hypothesis::default().check(&result(100.0, None));
        assert_eq!(checks.len(), 1);
        assert!(!checks[0].passed);
        assert_eq!(checks[0].detail, "not recovered: /www 1 of 5 serving");
    }
}

//! Scripted runs: `scenario.toml` is a list of steps (fault, wait, scale, deploy, assert)
//! held to a steady-state hypothesis. Every `paas chaos <fault>` command is a one-fault
//! scenario run the same way.
//!
//! ```toml
//! name = "the seed's experiment: lose 4 of 5 slaves"
//! [steady-state]
//! min-availability = 99.5      # percent of requests during each fault
//! recover-within = "120s"
//!
//! [[step]]
//! scale = "/www"
//! instances = 5
//!
//! [[step]]
//! fault = "kill"
//! role = "slave"
//! count = 4
//!
//! [[step]]
//! fault = "partition-az"
//! az = "sim-b"
//! for = "30s"
//!
//! [[step]]
//! assert = "recovered"
//! within = "90s"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::fault::{self, Fault, FaultPlan};
use crate::hypothesis::Hypothesis;
use crate::journal::Check;
use crate::platform::{Component, Platform};
use crate::select::Selector;
use crate::session::{Session, SessionError};

/// A checked scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub seed: Option<u64>,
    pub rate: Option<u32>,
    pub recover_timeout: Option<Duration>,
    pub hypothesis: Hypothesis,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Fault {
        fault: Fault,
        /// Heal after this long; `None`: heal once the platform recovered without the nodes.
        duration: Option<Duration>,
        /// Undo the fault at the end (restart killed nodes); otherwise it stays recorded for
        /// `paas chaos heal`.
        heal: bool,
    },
    Wait(Duration),
    Scale {
        app: String,
        instances: u32,
    },
    Deploy(PathBuf),
    /// Every app back at its count, healthy and routed within this long.
    AssertRecovered(Duration),
    /// Availability of every request so far, percent.
    AssertAvailability(f64),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawScenario {
    name: Option<String>,
    seed: Option<u64>,
    rate: Option<u32>,
    #[serde(default, with = "crate::duration_opt")]
    recover_timeout: Option<Duration>,
    #[serde(default)]
    steady_state: Hypothesis,
    #[serde(default)]
    step: Vec<RawStep>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStep {
    fault: Option<String>,
    wait: Option<String>,
    scale: Option<String>,
    deploy: Option<PathBuf>,
    assert: Option<String>,
    role: Option<String>,
    az: Option<String>,
    #[serde(default)]
    nodes: Vec<String>,
    count: Option<u32>,
    fraction: Option<f64>,
    component: Option<String>,
    ms: Option<u32>,
    jitter_ms: Option<u32>,
    percent: Option<f64>,
    #[serde(rename = "for")]
    duration: Option<String>,
    heal: Option<bool>,
    instances: Option<u32>,
    within: Option<String>,
    min_availability: Option<f64>,
}

/// A scenario file that cannot be used; names the step and the key.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: step {step}: {message}")]
    Step { path: PathBuf, step: usize, message: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(&text, path)
    }

    /// Parses and checks a scenario; `path` is for messages and relative `deploy` files.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let raw: RawScenario = toml::from_str(text).map_err(|e| ScenarioError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let steps = raw
            .step
            .into_iter()
            .enumerate()
            .map(|(i, step)| {
                step.check(base).map_err(|message| ScenarioError::Step {
                    path: path.to_path_buf(),
                    step: i + 1,
                    message,
                })
            })
            .collect::<Result<Vec<Step>, _>>()?;
        if steps.is_empty() {
            return Err(ScenarioError::Syntax {
                path: path.to_path_buf(),
                message: "no [[step]]: add at least one, e.g. [[step]] fault = \"kill\" role = \"slave\" count = 1".into(),
            });
        }
        Ok(Scenario {
            name: raw.name.unwrap_or_else(|| path.display().to_string()),
            seed: raw.seed,
            rate: raw.rate,
            recover_timeout: raw.recover_timeout,
            hypothesis: raw.steady_state,
            steps,
        })
    }
}

/// Parses `30s`, `2m`, `1m30s`.
pub fn parse_duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{key} = {text:?}: {e} (write e.g. \"30s\" or \"2m\")"))
}

impl RawStep {
    fn check(self, base: &Path) -> Result<Step, String> {
        let kinds = [
            self.fault.is_some(),
            self.wait.is_some(),
            self.scale.is_some(),
            self.deploy.is_some(),
            self.assert.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("give exactly one of fault, wait, scale, deploy, assert".into());
        }
        if let Some(wait) = &self.wait {
            return Ok(Step::Wait(parse_duration("wait", wait)?));
        }
        if let Some(app) = self.scale {
            let instances = self.instances.ok_or("scale needs instances = N")?;
            return Ok(Step::Scale { app, instances });
        }
        if let Some(file) = self.deploy {
            return Ok(Step::Deploy(base.join(file)));
        }
        if let Some(assert) = &self.assert {
            return match assert.as_str() {
                "recovered" => Ok(Step::AssertRecovered(parse_duration(
                    "within",
                    self.within.as_deref().ok_or("assert = \"recovered\" needs within = \"90s\"")?,
                )?)),
                "availability" => Ok(Step::AssertAvailability(
                    self.min_availability
                        .ok_or("assert = \"availability\" needs min-availability = 99.5")?,
                )),
                other => Err(format!("assert = {other:?}: use \"recovered\" or \"availability\"")),
            };
        }
        let kind = self.fault.clone().expect("one kind is set");
        let duration = self.duration.as_deref().map(|d| parse_duration("for", d)).transpose()?;
        let target = self.selector()?;
        let fault = match kind.as_str() {
            "kill" => Fault::Kill { target },
            "stop" => Fault::Stop { target },
            "start" => Fault::Start { target },
            "pause" => Fault::Pause { target },
            "kill-leader" => Fault::KillLeader {
                component: parse_component(self.component.as_deref().ok_or("kill-leader needs component = \"mesos\"")?)?,
            },
            "partition-az" => Fault::PartitionAz {
                az: self.az.clone().ok_or("partition-az needs az = \"<AZ name>\"")?,
            },
            "delay" => Fault::Delay {
                target,
                ms: self.ms.ok_or("delay needs ms = 200")?,
                jitter_ms: self.jitter_ms.unwrap_or(0),
            },
            "loss" => Fault::Loss {
                target,
                percent: self.percent.ok_or("loss needs percent = 20")?,
            },
            "restart-rolling" => Fault::RestartRolling { target },
            other => {
                return Err(format!(
                    "fault = {other:?}: use kill, stop, start, pause, kill-leader, partition-az, delay, loss or restart-rolling"
                ));
            }
        };
        if fault.needs_duration() && duration.is_none() {
            return Err(format!("fault = {kind:?} lasts until healed: add for = \"30s\""));
        }
        Ok(Step::Fault {
            fault,
            duration,
            heal: self.heal.unwrap_or(true),
        })
    }

    fn selector(&self) -> Result<Selector, String> {
        Selector::from_parts(
            "role =",
            self.role.as_deref(),
            self.az.as_deref(),
            &self.nodes,
            self.count,
            self.fraction,
        )
    }
}

pub fn parse_component(text: &str) -> Result<Component, String> {
    match text {
        "mesos" => Ok(Component::Mesos),
        "marathon" => Ok(Component::Marathon),
        "zookeeper" | "zk" => Ok(Component::Zookeeper),
        other => Err(format!("component {other:?}: use mesos, marathon or zookeeper")),
    }
}

/// Plans a fault against the platform as it is now.
pub async fn plan_now(platform: &dyn Platform, fault: &Fault, seed: u64) -> Result<FaultPlan, String> {
    let nodes = platform.nodes().await.map_err(|e| e.to_string())?;
    let view = platform.view().await;
    fault::plan(fault, &nodes, &view, seed).map_err(|e| e.to_string())
}

/// The seed of step `index`: each step draws from its own stream, so inserting a step does
/// not change the choices of the steps before it.
pub fn step_seed(seed: u64, index: usize) -> u64 {
    seed.wrapping_add(index as u64)
}

/// Runs the steps in order. A step that cannot be planned or applied ends the run with a
/// failed check; the caller heals what is left and assembles the journal.
pub async fn run(session: &mut Session<'_>, platform: &dyn Platform, scenario: &Scenario, seed: u64) -> Result<(), SessionError> {
    for (index, step) in scenario.steps.iter().enumerate() {
        match step {
            Step::Fault { fault, duration, heal } => {
                let plan = match plan_now(platform, fault, step_seed(seed, index)).await {
                    Ok(plan) => plan,
                    Err(message) => {
                        session.add_check(Check::failed(&format!("step {}: {}", index + 1, fault.describe()), &message));
                        return Ok(());
                    }
                };
                let result = session.run_fault(&plan, *duration, *heal).await?;
                session.record(result, &scenario.hypothesis);
            }
            Step::Wait(duration) => session.sleep(*duration).await?,
            Step::Scale { app, instances } => {
                if let Err(missing) = session.scale(app, *instances).await? {
                    session.add_check(Check::failed(&format!("scale {app} to {instances}"), &missing.join("; ")));
                }
            }
            Step::Deploy(path) => {
                let definition = std::fs::read_to_string(path).map_err(|e| {
                    SessionError::Platform(crate::platform::PlatformError::Other {
                        what: format!("reading {}", path.display()),
                        message: e.to_string(),
                    })
                })?;
                if let Err(missing) = session.deploy(&definition).await? {
                    session.add_check(Check::failed(&format!("deploy {}", path.display()), &missing.join("; ")));
                }
            }
            Step::AssertRecovered(within) => {
                let name = format!("step {}: recovered within {within:?}", index + 1);
                match session.wait_recovered(&[], &[], &[], *within).await? {
                    Ok(took) => session.add_check(Check::passed(&name, &format!("steady after {:.1}s", took.as_secs_f64()))),
                    Err(missing) => session.add_check(Check::failed(&name, &missing.join("; "))),
                }
            }
            Step::AssertAvailability(min) => {
                let name = format!("step {}: availability so far ≥ {min}%", index + 1);
                match session.availability_so_far() {
                    Some(a) if a + 1e-9 >= *min => session.add_check(Check::passed(&name, &format!("{a:.3}%"))),
                    Some(a) => session.add_check(Check::failed(&name, &format!("{a:.3}%"))),
                    None => session.add_check(Check::failed(&name, "no request was sent")),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use paas_core::Role;

    use super::*;

    fn parse(text: &str) -> Result<Scenario, String> {
        Scenario::parse(text, Path::new("/tmp/s/scenario.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_scenario_reads_into_checked_steps() {
        let s = parse(
            r#"
            name = "seed"
            seed = 42
            [steady-state]
            min-availability = 99.5
            recover-within = "2m"
            [[step]]
            scale = "/www"
            instances = 5
            [[step]]
            fault = "kill"
            role = "slaves"
            count = 4
            [[step]]
            fault = "partition-az"
            az = "sim-b"
            for = "30s"
            [[step]]
            deploy = "api.json"
            [[step]]
            assert = "recovered"
            within = "90s"
            "#,
        )
        .unwrap();
        assert_eq!(s.seed, Some(42));
        assert_eq!(s.hypothesis.recover_within, Some(Duration::from_secs(120)));
        assert_eq!(
            s.steps,
            [
                Step::Scale {
                    app: "/www".into(),
                    instances: 5
                },
                Step::Fault {
                    fault: Fault::Kill {
                        target: Selector::role(Role::Slave, 4)
                    },
                    duration: None,
                    heal: true
                },
                Step::Fault {
                    fault: Fault::PartitionAz { az: "sim-b".into() },
                    duration: Some(Duration::from_secs(30)),
                    heal: true
                },
                Step::Deploy(PathBuf::from("/tmp/s/api.json")),
                Step::AssertRecovered(Duration::from_secs(90)),
            ]
        );
    }

    #[test]
    fn the_example_scenario_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/seed.toml");
        let s = Scenario::load(&path).unwrap();
        assert_eq!(s.steps.len(), 6);
        assert_eq!(s.hypothesis.min_availability, Some(99.5));
    }

    #[test]
    fn mistakes_name_the_step_and_the_fix() {
        let cases = [
            (
                "[[step]]\nfault = \"explode\"\nrole = \"slave\"",
                "step 1: fault = \"explode\": use kill, stop",
            ),
            (
                "[[step]]\nwait = \"5s\"\n[[step]]\nfault = \"pause\"\nrole = \"lb\"",
                "step 2: fault = \"pause\" lasts until healed: add for = \"30s\"",
            ),
            ("[[step]]\nwait = \"soon\"", "step 1: wait = \"soon\""),
            ("[[step]]\nfault = \"kill\"\nwait = \"5s\"", "step 1: give exactly one of"),
            (
                "[[step]]\nfault = \"kill\"\nrole = \"wizard\"",
                "step 1: role = \"wizard\": use master, slave",
            ),
            ("[[step]]\nscale = \"/www\"", "step 1: scale needs instances"),
            ("[[step]]\nfault = \"kill\"\ncolour = \"red\"", "unknown field `colour`"),
            ("name = \"empty\"", "no [[step]]"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(expected), "{error:?} should contain {expected:?}");
        }
    }
}

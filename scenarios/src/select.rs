//! Which nodes a fault hits: a filter (role, AZ, names) and an amount (count or fraction),
//! chosen with a seeded RNG so that `--seed` replays the same choice.

use paas_core::Role;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::platform::{NodeInfo, NodeState};

/// Nodes to hit. Filters combine (role AND AZ AND names); the amount applies to what matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selector {
    pub role: Option<Role>,
    pub az: Option<String>,
    /// Node names; each must exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// How many of the matching nodes; default all.
    pub count: Option<u32>,
    /// Which share (0 < f ≤ 1) of the matching nodes, rounded up.
    pub fraction: Option<f64>,
}

/// Why no choice could be made; each names the input and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SelectError {
    #[error("node {name}: no such node (nodes: {known})")]
    UnknownNode { name: String, known: String },
    #[error("AZ {az}: no node is in it (AZs: {known})")]
    UnknownAz { az: String, known: String },
    #[error("asked for {wanted} nodes but only {matching} {what} match {filter}; lower the count or widen the filter")]
    TooFew {
        wanted: u32,
        matching: usize,
        what: &'static str,
        filter: String,
    },
    #[error("--fraction {0}: must be above 0 and at most 1")]
    BadFraction(f64),
    #[error("give either a count or a fraction, not both")]
    CountAndFraction,
    #[error("this fault needs a target: name nodes (--node), a role (--role) or an AZ (--az)")]
    NoTarget,
    #[error("no {what} node matches {filter}")]
    NoneMatch { what: &'static str, filter: String },
}

impl Selector {
    pub fn role(role: Role, count: u32) -> Selector {
        Selector {
            role: Some(role),
            count: Some(count),
            ..Selector::default()
        }
    }

    pub fn node(name: &str) -> Selector {
        Selector {
            nodes: vec![name.to_string()],
            ..Selector::default()
        }
    }

    /// A selector from its parts as a user writes them; the error names `role_key` (e.g.
    /// `--role` or `role =`) and the roles there are.
    pub fn from_parts(
        role_key: &str,
        role: Option<&str>,
        az: Option<&str>,
        nodes: &[String],
        count: Option<u32>,
        fraction: Option<f64>,
    ) -> Result<Selector, String> {
        let role = role
            .map(|r| Role::parse(r).ok_or_else(|| format!("{role_key} {r:?}: use master, slave, lb or adminlb")))
            .transpose()?;
        Ok(Selector {
            role,
            az: az.map(str::to_string),
            nodes: nodes.to_vec(),
            count,
            fraction,
        })
    }

    fn is_unbounded(&self) -> bool {
        self.role.is_none() && self.az.is_none() && self.nodes.is_empty()
    }

    /// The filter in words, for messages: `role=slave az=sim-a`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(role) = self.role {
            parts.push(format!("role={}", role.as_str()));
        }
        if let Some(az) = &self.az {
            parts.push(format!("az={az}"));
        }
        if !self.nodes.is_empty() {
            parts.push(format!("nodes={}", self.nodes.join(",")));
        }
        if parts.is_empty() { "every node".into() } else { parts.join(" ") }
    }

    /// Chooses among `nodes` those in one of the `states`, sorted by name. The choice
    /// depends only on the inputs and the seed.
    pub fn choose(&self, nodes: &[NodeInfo], states: &[NodeState], seed: u64) -> Result<Vec<NodeInfo>, SelectError> {
        if self.is_unbounded() {
            return Err(SelectError::NoTarget);
        }
        if self.count.is_some() && self.fraction.is_some() {
            return Err(SelectError::CountAndFraction);
        }
        if let Some(f) = self.fraction
            && !(f > 0.0 && f <= 1.0)
        {
            return Err(SelectError::BadFraction(f));
        }
        let known = || {
            let mut names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
            names.sort();
            names.join(", ")
        };
        for name in &self.nodes {
            if !nodes.iter().any(|n| &n.name == name) {
                return Err(SelectError::UnknownNode {
                    name: name.clone(),
                    known: known(),
                });
            }
        }
        if let Some(az) = &self.az
            && !nodes.iter().any(|n| &n.az == az)
        {
            let mut azs: Vec<&str> = nodes.iter().map(|n| n.az.as_str()).filter(|a| !a.is_empty()).collect();
            azs.sort();
            azs.dedup();
            return Err(SelectError::UnknownAz {
                az: az.clone(),
                known: azs.join(", "),
            });
        }
        let what = if states == [NodeState::Running] {
            "running"
        } else {
            "stopped or paused"
        };
        let mut matching: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| self.role.is_none_or(|r| n.role == Some(r)))
            .filter(|n| self.az.as_ref().is_none_or(|az| &n.az == az))
            .filter(|n| self.nodes.is_empty() || self.nodes.contains(&n.name))
            .filter(|n| states.contains(&n.state))
            .collect();
        if matching.is_empty() {
            return Err(SelectError::NoneMatch {
                what,
                filter: self.describe(),
            });
        }
        matching.sort_by(|a, b| a.name.cmp(&b.name));
        let wanted = match (self.count, self.fraction) {
            (Some(n), _) => n,
            (None, Some(f)) => ((f * matching.len() as f64).ceil() as u32).max(1),
            (None, None) => matching.len() as u32,
        };
        if wanted as usize > matching.len() {
            return Err(SelectError::TooFew {
                wanted,
                matching: matching.len(),
                what,
                filter: self.describe(),
            });
        }
        let mut rng = StdRng::seed_from_u64(seed);
        matching.shuffle(&mut rng);
        let mut chosen: Vec<NodeInfo> = matching.into_iter().take(wanted as usize).cloned().collect();
        chosen.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(chosen)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cluster() -> Vec<NodeInfo> {
        let node = |name: &str, role: Role, az: &str, address: &str| NodeInfo {
            name: name.into(),
            role: Some(role),
            az: az.into(),
            address: address.into(),
            state: NodeState::Running,
        };
        vec![
            node("master-1", Role::Master, "sim-a", "10.0.0.10"),
            node("master-2", Role::Master, "sim-b", "10.0.16.10"),
            node("master-3", Role::Master, "sim-c", "10.0.32.10"),
            node("slave-1", Role::Slave, "sim-a", "10.0.128.30"),
            node("slave-2", Role::Slave, "sim-b", "10.0.144.30"),
            node("slave-3", Role::Slave, "sim-c", "10.0.160.30"),
            node("slave-4", Role::Slave, "sim-a", "10.0.128.31"),
            node("slave-5", Role::Slave, "sim-b", "10.0.144.31"),
            node("lb-1", Role::Lb, "sim-a", "10.0.128.20"),
            node("lb-2", Role::Lb, "sim-b", "10.0.144.20"),
        ]
    }

    fn names(nodes: &[NodeInfo]) -> Vec<&str> {
        nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn the_same_seed_chooses_the_same_nodes_and_another_seed_may_not() {
        let s = Selector::role(Role::Slave, 2);
        let first = s.choose(&cluster(), &[NodeState::Running], 7).unwrap();
        assert_eq!(first, s.choose(&cluster(), &[NodeState::Running], 7).unwrap());
        let distinct: std::collections::BTreeSet<Vec<String>> = (0..40)
            .map(|seed| {
                s.choose(&cluster(), &[NodeState::Running], seed)
                    .unwrap()
                    .into_iter()
                    .map(|n| n.name)
                    .collect()
            })
            .collect();
        assert!(distinct.len() > 3, "seeds should spread the choice: {distinct:?}");
    }

    #[test]
    fn filters_combine_and_fractions_round_up() {
        let s = Selector {
            role: Some(Role::Slave),
            az: Some("sim-a".into()),
            ..Selector::default()
        };
        assert_eq!(
            names(&s.choose(&cluster(), &[NodeState::Running], 1).unwrap()),
            ["slave-1", "slave-4"]
        );
        let half = Selector {
            role: Some(Role::Slave),
            fraction: Some(0.5),
            ..Selector::default()
        };
        assert_eq!(half.choose(&cluster(), &[NodeState::Running], 1).unwrap().len(), 3);
    }

    #[test]
    fn only_nodes_in_the_wanted_state_are_chosen() {
        let mut nodes = cluster();
        nodes[3].state = NodeState::Stopped;
        let s = Selector {
            role: Some(Role::Slave),
            ..Selector::default()
        };
        assert_eq!(
            names(&s.choose(&nodes, &[NodeState::Stopped, NodeState::Paused], 1).unwrap()),
            ["slave-1"]
        );
        assert_eq!(s.choose(&nodes, &[NodeState::Running], 1).unwrap().len(), 4);
    }

    #[test]
    fn bad_selections_name_the_input() {
        let cases = [
            (
                Selector::role(Role::Slave, 6),
                "asked for 6 nodes but only 5 running match role=slave",
            ),
            (Selector::node("slave-9"), "node slave-9: no such node (nodes: lb-1, lb-2, master-1"),
            (
                Selector {
                    az: Some("us-east-1z".into()),
                    ..Selector::default()
                },
                "AZ us-east-1z: no node is in it (AZs: sim-a, sim-b, sim-c)",
            ),
            (Selector::default(), "this fault needs a target"),
            (
                Selector {
                    role: Some(Role::Lb),
                    fraction: Some(1.5),
                    ..Selector::default()
                },
                "--fraction 1.5",
            ),
            (
                Selector {
                    role: Some(Role::AdminLb),
                    ..Selector::default()
                },
                "no running node matches role=adminlb",
            ),
        ];
        for (selector, message) in cases {
            let error = selector.choose(&cluster(), &[NodeState::Running], 1).unwrap_err().to_string();
            assert!(error.starts_with(message), "{error:?} should start with {message:?}");
        }
    }
}

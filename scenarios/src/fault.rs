//! Faults and their plans. [`plan`] is pure: from the nodes, the current leaders and a seed
//! it decides every node operation and network rule a fault will apply, and the heal of each,
//! before anything is touched. The executor ([`crate::session`]) makes no choices.

use paas_core::{NodeOp, Role};
use serde::{Deserialize, Serialize};

use crate::platform::{ClusterView, Component, NetRule, NodeInfo, NodeState};
use crate::select::{SelectError, Selector};

/// What to do to the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// Power off nodes (SIGKILL); healing starts them again.
    Kill { target: Selector },
    /// Stop nodes gracefully; healing starts them again.
    Stop { target: Selector },
    /// Start stopped or paused nodes.
    Start { target: Selector },
    /// Freeze every process of the nodes; healing thaws them.
    Pause { target: Selector },
    /// Kill whichever master leads a component.
    KillLeader { component: Component },
    /// Cut one AZ's nodes off from every node outside it, both ways. The external load
    /// balancer spans every AZ (as an AWS ELB does) and stays reachable.
    PartitionAz { az: String },
    /// Delay the nodes' packets to the cluster network.
    Delay { target: Selector, ms: u32, jitter_ms: u32 },
    /// Drop a share of the packets the nodes receive from the cluster network.
    Loss { target: Selector, percent: f64 },
    /// Stop and start the nodes one at a time, waiting for recovery after each.
    RestartRolling { target: Selector },
}

impl Fault {
    /// A short description: `kill role=slave count=4`.
    pub fn describe(&self) -> String {
        let target = |s: &Selector| {
            let mut text = s.describe();
            if let Some(n) = s.count {
                text.push_str(&format!(" count={n}"));
            }
            if let Some(f) = s.fraction {
                text.push_str(&format!(" fraction={f}"));
            }
            text
        };
        match self {
            Fault::Kill { target: s } => format!("kill {}", target(s)),
            Fault::Stop { target: s } => format!("stop {}", target(s)),
            Fault::Start { target: s } => format!("start {}", target(s)),
            Fault::Pause { target: s } => format!("pause {}", target(s)),
            Fault::KillLeader { component } => format!("kill the {} leader", component.as_str()),
            Fault::PartitionAz { az } => format!("partition AZ {az}"),
            Fault::Delay { target: s, ms, jitter_ms } => format!("delay {ms}±{jitter_ms} ms on {}", target(s)),
            Fault::Loss { target: s, percent } => format!("{percent}% loss on {}", target(s)),
            Fault::RestartRolling { target: s } => format!("rolling restart of {}", target(s)),
        }
    }

    /// Whether the fault lasts until healed, so it needs `--for` (node kills and stops end
    /// when the platform has recovered without the nodes).
    pub fn needs_duration(&self) -> bool {
        matches!(
            self,
            Fault::Pause { .. } | Fault::PartitionAz { .. } | Fault::Delay { .. } | Fault::Loss { .. }
        )
    }
}

/// One thing done to one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Effect {
    pub node: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Node {
        op: NodeOp,
    },
    Net {
        rule: NetRule,
    },
    /// Remove every network rule of the node.
    NetClear,
}

impl Effect {
    /// The effect that undoes this one, if any.
    pub fn heal(&self) -> Option<Effect> {
        let action = match &self.action {
            Action::Node {
                op: NodeOp::Kill | NodeOp::Stop,
            } => Action::Node { op: NodeOp::Start },
            Action::Node { op: NodeOp::Pause } => Action::Node { op: NodeOp::Unpause },
            Action::Node {
                op: NodeOp::Start | NodeOp::Unpause,
            } => return None,
            Action::Net { .. } => Action::NetClear,
            Action::NetClear => return None,
        };
        Some(Effect {
            node: self.node.clone(),
            action,
        })
    }

    pub fn describe(&self) -> String {
        match &self.action {
            Action::Node { op } => format!("{} {}", op.as_str(), self.node),
            Action::Net {
                rule: NetRule::Isolate { peers },
            } => format!("isolate {} from {} peers", self.node, peers.len()),
            Action::Net {
                rule: NetRule::Loss { percent },
            } => format!("drop {percent}% of packets into {}", self.node),
            Action::Net {
                rule: NetRule::Delay { ms, jitter_ms },
            } => format!("delay packets of {} by {ms}±{jitter_ms} ms", self.node),
            Action::NetClear => format!("clear network faults of {}", self.node),
        }
    }
}

/// Everything a fault will do, decided before anything is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    pub description: String,
    /// The nodes hit, by name.
    pub targets: Vec<String>,
    /// In order. For a rolling restart, each `start` is followed by a wait for recovery.
    pub effects: Vec<Effect>,
    pub rolling: bool,
    /// Addresses of the slaves whose tasks the fault takes away (recovery means no task
    /// is left on them while the fault lasts).
    pub lost_slaves: Vec<String>,
    /// lbs that stop serving while the fault lasts (not expected in the routing check).
    pub lost_lbs: Vec<String>,
}

impl FaultPlan {
    /// The heals of the effects, in reverse order, without repeats.
    pub fn heals(&self) -> Vec<Effect> {
        let mut heals: Vec<Effect> = Vec::new();
        for heal in self.effects.iter().rev().filter_map(Effect::heal) {
            if !heals.contains(&heal) {
                heals.push(heal);
            }
        }
        heals
    }
}

/// Why a fault cannot be planned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("no {} leader is known right now (is the cluster up?)", .0.as_str())]
    NoLeader(Component),
    #[error("--percent {0}: must be above 0 and at most 100")]
    BadPercent(f64),
    #[error("--ms {0}: must be between 1 and 10000")]
    BadDelay(u32),
}

/// Plans `fault` on `nodes`, with `view` for leaders and `seed` for random choices.
pub fn plan(fault: &Fault, nodes: &[NodeInfo], view: &ClusterView, seed: u64) -> Result<FaultPlan, PlanError> {
    let running = [NodeState::Running];
    let node_effects = |target: &Selector, states: &[NodeState], op: NodeOp| -> Result<(Vec<NodeInfo>, Vec<Effect>, bool), PlanError> {
        let chosen = target.choose(nodes, states, seed)?;
        let effects = chosen
            .iter()
            .map(|n| Effect {
                node: n.name.clone(),
                action: Action::Node { op },
            })
            .collect();
        Ok((chosen, effects, false))
    };
    let (chosen, effects, rolling) = match fault {
        Fault::Kill { target } => node_effects(target, &running, NodeOp::Kill)?,
        Fault::Stop { target } => node_effects(target, &running, NodeOp::Stop)?,
        Fault::Pause { target } => node_effects(target, &running, NodeOp::Pause)?,
        Fault::Start { target } => {
            let chosen = target.choose(nodes, &[NodeState::Stopped, NodeState::Paused], seed)?;
            let effects = chosen
                .iter()
                .map(|n| Effect {
                    node: n.name.clone(),
                    action: Action::Node {
                        op: if n.state == NodeState::Paused {
                            NodeOp::Unpause
                        } else {
                            NodeOp::Start
                        },
                    },
                })
                .collect();
            (chosen, effects, false)
        }
        Fault::KillLeader { component } => {
            let leader = view.leader(*component).ok_or(PlanError::NoLeader(*component))?;
            node_effects(&Selector::node(leader), &running, NodeOp::Kill)?
        }
        Fault::PartitionAz { az } => {
            let inside = Selector {
                az: Some(az.clone()),
                ..Selector::default()
            }
            .choose(nodes, &running, seed)?;
            let inside: Vec<NodeInfo> = inside.into_iter().filter(|n| n.role.is_some()).collect();
            let peers: Vec<String> = nodes
                .iter()
                .filter(|n| n.role.is_some() && &n.az != az)
                .map(|n| n.address.clone())
                .collect();
            let effects = inside
                .iter()
                .map(|n| Effect {
                    node: n.name.clone(),
                    action: Action::Net {
                        rule: NetRule::Isolate { peers: peers.clone() },
                    },
                })
                .collect();
            (inside, effects, false)
        }
        Fault::Delay { target, ms, jitter_ms } => {
            if !(1..=10_000).contains(ms) {
                return Err(PlanError::BadDelay(*ms));
            }
            net_effects(
                target,
                nodes,
                seed,
                NetRule::Delay {
                    ms: *ms,
                    jitter_ms: *jitter_ms,
                },
            )?
        }
        Fault::Loss { target, percent } => {
            if !(*percent > 0.0 && *percent <= 100.0) {
                return Err(PlanError::BadPercent(*percent));
            }
            net_effects(target, nodes, seed, NetRule::Loss { percent: *percent })?
        }
        Fault::RestartRolling { target } => {
            let chosen = target.choose(nodes, &running, seed)?;
            let effects = chosen
                .iter()
                .flat_map(|n| {
                    [NodeOp::Stop, NodeOp::Start].map(|op| Effect {
                        node: n.name.clone(),
                        action: Action::Node { op },
                    })
                })
                .collect();
            (chosen, effects, true)
        }
    };
    // A partition or a frozen node takes its tasks away as surely as a kill; delay and loss
    // degrade them but the platform is not expected to move them.
    let takes_tasks = !matches!(fault, Fault::Delay { .. } | Fault::Loss { .. } | Fault::Start { .. });
    let lost = |role: Role| -> Vec<String> {
        if !takes_tasks {
            return Vec::new();
        }
        chosen.iter().filter(|n| n.role == Some(role)).map(|n| n.address.clone()).collect()
    };
    let lost_lbs = chosen
        .iter()
        .filter(|n| takes_tasks && n.role == Some(Role::Lb))
        .map(|n| n.name.clone())
        .collect();
    Ok(FaultPlan {
        description: fault.describe(),
        targets: chosen.iter().map(|n| n.name.clone()).collect(),
        effects,
        rolling,
        lost_slaves: if rolling { Vec::new() } else { lost(Role::Slave) },
        lost_lbs: if rolling { Vec::new() } else { lost_lbs },
    })
}

fn net_effects(target: &Selector, nodes: &[NodeInfo], seed: u64, rule: NetRule) -> Result<(Vec<NodeInfo>, Vec<Effect>, bool), PlanError> {
    let chosen = target.choose(nodes, &[NodeState::Running], seed)?;
    let effects = chosen
        .iter()
        .map(|n| Effect {
            node: n.name.clone(),
            action: Action::Net { rule: rule.clone() },
        })
        .collect();
    Ok((chosen, effects, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::tests::cluster;

    fn view() -> ClusterView {
        ClusterView {
            mesos_leader: Some("master-2".into()),
            ..ClusterView::default()
        }
    }

    #[test]
    fn kill_slaves_kills_the_chosen_slaves_and_heals_by_starting_them() {
        let p = plan(
            &Fault::Kill {
                target: Selector::role(Role::Slave, 4),
            },
            &cluster(),
            &view(),
            3,
        )
        .unwrap();
        assert_eq!(p.targets.len(), 4);
        assert_eq!(p.lost_slaves.len(), 4);
        assert!(p.effects.iter().all(|e| e.action == Action::Node { op: NodeOp::Kill }));
        let heals = p.heals();
        assert_eq!(heals.len(), 4);
        assert!(heals.iter().all(|e| e.action == Action::Node { op: NodeOp::Start }));
    }

    #[test]
    fn the_leader_is_found_by_component() {
        let p = plan(
            &Fault::KillLeader {
                component: Component::Mesos,
            },
            &cluster(),
            &view(),
            0,
        )
        .unwrap();
        assert_eq!(p.targets, ["master-2"]);
        let none = plan(
            &Fault::KillLeader {
                component: Component::Marathon,
            },
            &cluster(),
            &view(),
            0,
        );
        assert_eq!(none, Err(PlanError::NoLeader(Component::Marathon)));
    }

    #[test]
    fn a_partition_isolates_each_node_of_the_az_from_every_node_outside_it() {
        let p = plan(&Fault::PartitionAz { az: "sim-c".into() }, &cluster(), &view(), 0).unwrap();
        assert_eq!(p.targets, ["master-3", "slave-3"]);
        let outside: Vec<String> = cluster().iter().filter(|n| n.az != "sim-c").map(|n| n.address.clone()).collect();
        for effect in &p.effects {
            assert_eq!(
                effect.action,
                Action::Net {
                    rule: NetRule::Isolate { peers: outside.clone() }
                }
            );
        }
        assert_eq!(p.lost_slaves, ["10.0.160.30"]);
        assert!(p.heals().iter().all(|h| h.action == Action::NetClear));
    }

    #[test]
    fn a_rolling_restart_stops_and_starts_each_node_in_turn_and_needs_no_heal() {
        let p = plan(
            &Fault::RestartRolling {
                target: Selector {
                    role: Some(Role::Master),
                    ..Selector::default()
                },
            },
            &cluster(),
            &view(),
            0,
        )
        .unwrap();
        let steps: Vec<String> = p.effects.iter().map(Effect::describe).collect();
        assert_eq!(
            steps,
            [
                "stop master-1",
                "start master-1",
                "stop master-2",
                "start master-2",
                "stop master-3",
                "start master-3"
            ]
        );
        assert!(p.rolling);
        assert_eq!(p.heals().len(), 3, "a crash mid-way must still restart the node");
    }

    #[test]
    fn out_of_range_network_faults_are_refused() {
        let target = Selector::role(Role::Slave, 1);
        assert_eq!(
            plan(
                &Fault::Loss {
                    target: target.clone(),
                    percent: 0.0
                },
                &cluster(),
                &view(),
                0
            ),
            Err(PlanError::BadPercent(0.0))
        );
        assert_eq!(
            plan(
                &Fault::Delay {
                    target,
                    ms: 0,
                    jitter_ms: 0
                },
                &cluster(),
                &view(),
                0
            ),
            Err(PlanError::BadDelay(0))
        );
    }
}

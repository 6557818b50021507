//! Planning: desired graph + observed world → ordered steps with reasons. Pure and synchronous.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::backend::Observed;
use crate::graph::{Graph, Target};
use crate::resource::{ResourceId, ResourceKind, ResourceSpec};

/// What a step does to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    /// Delete, then create anew (a setting that cannot change in place changed).
    Replace,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Replace => "replace",
            Action::Delete => "delete",
        }
    }

    /// The one-character mark of a plan listing.
    pub fn mark(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Replace => '±',
            Action::Delete => '-',
        }
    }
}

/// One change to one resource, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub action: Action,
    pub id: ResourceId,
    pub reason: String,
    /// The resource as observed, for update, replace and delete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Observed>,
}

/// Every change needed to make the world match a graph. Deletions come first (highest rank
/// first), then creations and updates in dependency order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub cluster: String,
    pub target: Target,
    pub steps: Vec<Step>,
    /// Node replacements done one at a time, in this order (masters, then slaves, then lbs,
    /// then the adminlb), each deleting the old machine only when the one before is running
    /// again. Empty when nothing rolls; see [`plan`] for which replacements do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rolling: Vec<ResourceId>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// How many steps of each action.
    pub fn count(&self, action: Action) -> usize {
        self.steps.iter().filter(|s| s.action == action).count()
    }

    /// Whether `id`'s replacement is rolled (done in turn, not deleted up front).
    pub fn rolls(&self, id: &ResourceId) -> bool {
        self.rolling.contains(id)
    }

    /// `3 to create, 1 to update, 0 to replace, 2 to delete`.
    pub fn summary(&self) -> String {
        format!(
            "{} to create, {} to update, {} to replace, {} to delete",
            self.count(Action::Create),
            self.count(Action::Update),
            self.count(Action::Replace),
            self.count(Action::Delete)
        )
    }
}

/// Plans the changes that turn `observed` into `desired`.
///
/// Observed resources with the same id (left by a crashed tool that did not mark its creates
/// atomically, or by hand) are reduced to one: the copy matching the desired fingerprint stays.
/// A resource whose dependency is replaced is replaced too, since it may refer to the old one,
/// unless it refers to it only through what it can change in place (a load balancer's members,
/// a DNS record's target): then it is updated.
///
/// On AWS, replaced instances roll (see [`Plan::rolling`]) when nothing they stand on is
/// replaced with them but the node binary's object: a subnet or security group being replaced
/// must first lose every instance in it, so those replacements delete up front as before.
pub fn plan(desired: &Graph, observed: &[Observed]) -> Plan {
    let mut steps = Vec::new();
    let mut by_id: BTreeMap<&ResourceId, Vec<&Observed>> = BTreeMap::new();
    for o in observed {
        by_id.entry(&o.id).or_default().push(o);
    }

    let mut current: BTreeMap<&ResourceId, &Observed> = BTreeMap::new();
    let mut deletes = Vec::new();
    for (id, copies) in &by_id {
        let wanted = desired.get(id).map(|r| r.fingerprint());
        let keep = copies.iter().position(|o| Some(&o.fingerprint) == wanted.as_ref()).unwrap_or(0);
        for (i, copy) in copies.iter().enumerate() {
            if i == keep && wanted.is_some() {
                current.insert(id, copy);
            } else if wanted.is_none() && i == keep {
                deletes.push(Step {
                    action: Action::Delete,
                    id: (*id).clone(),
                    reason: "no longer in the spec".into(),
                    current: Some((*copy).clone()),
                });
            } else {
                deletes.push(Step {
                    action: Action::Delete,
                    id: (*id).clone(),
                    reason: format!("duplicate ({}) of {}", copy.provider_id, copies[keep].provider_id),
                    current: Some((*copy).clone()),
                });
            }
        }
    }
    deletes.sort_by_key(|s| std::cmp::Reverse(s.id.kind().rank()));
    steps.extend(deletes);

    let mut replaced: BTreeSet<&ResourceId> = BTreeSet::new();
    let mut rolling = Vec::new();
    for resource in desired.resources() {
        let want = resource.fingerprint();
        let replaced_dep = resource.depends_on.iter().find(|d| replaced.contains(d));
        let step = match current.get(&resource.id) {
            None => Some((Action::Create, "not there yet".to_string())),
            Some(o) if o.fingerprint.replace != want.replace => {
                Some((Action::Replace, "a setting that cannot change in place changed".to_string()))
            }
            Some(_) if replaced_dep.is_some_and(|d| resource.refers_in_place(d)) => {
                let dep = replaced_dep.expect("just matched");
                Some((Action::Update, format!("{dep} is replaced")))
            }
            Some(_) if replaced_dep.is_some() => {
                let dep = replaced_dep.expect("just matched");
                Some((Action::Replace, format!("depends on {dep}, which is replaced")))
            }
            Some(o) if o.fingerprint.update != want.update => Some((Action::Update, "its members, rules or target changed".to_string())),
            Some(_) => None,
        };
        if let Some((action, reason)) = step {
            if action == Action::Replace {
                replaced.insert(&resource.id);
                let held = resource
                    .depends_on
                    .iter()
                    .any(|d| replaced.contains(d) && d.kind() != ResourceKind::Object);
                if let ResourceSpec::Node(node) = &resource.spec
                    && desired.target == Target::Aws
                    && !held
                {
                    rolling.push((node.role, resource.id.clone()));
                }
            }
            steps.push(Step {
                action,
                id: resource.id.clone(),
                reason,
                current: current.get(&resource.id).map(|o| (*o).clone()),
            });
        }
    }
    // Masters first (the quorum is at its fullest before anything else moves), then the
    // machines that serve: slaves, lbs, the adminlb. Placement order within a role.
    rolling.sort_by_key(|(role, _)| *role);
    Plan {
        cluster: desired.cluster.clone(),
        target: desired.target,
        steps,
        rolling: rolling.into_iter().map(|(_, id)| id).collect(),
    }
}

/// A plan split by what it means to the user: bringing back what was lost, or changing the
/// cluster. Only a change needs their confirmation; a lost machine is simply re-created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanMeaning<'p> {
    /// Creations of resources the recorded state lists with the very settings the spec gives
    /// them now: they existed as asked and are gone (a removed container, a terminated instance).
    pub restores: Vec<&'p Step>,
    /// Every other step: what the spec (or the cluster's drift from it) changes.
    pub changes: Vec<&'p Step>,
}

impl PlanMeaning<'_> {
    /// `create node/slave-6, update elb/elb` — the changes, for a confirmation message.
    pub fn describe_changes(&self) -> String {
        self.changes
            .iter()
            .map(|s| format!("{} {}", s.action.as_str(), s.id))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The names of the resources brought back.
    pub fn restored_names(&self) -> Vec<&str> {
        self.restores.iter().map(|s| s.id.name()).collect()
    }
}

/// Splits `plan` (made for `desired`) into restores and changes against `recorded`, the
/// resources the state file lists from the last apply. Pure.
pub fn meaning<'p>(plan: &'p Plan, desired: &Graph, recorded: &[Observed]) -> PlanMeaning<'p> {
    let recorded: BTreeMap<&ResourceId, &Observed> = recorded.iter().map(|o| (&o.id, o)).collect();
    let (restores, changes) = plan.steps.iter().partition(|step| {
        step.action == Action::Create
            && match (recorded.get(&step.id), desired.get(&step.id)) {
                (Some(was), Some(wanted)) => was.fingerprint == wanted.fingerprint(),
                _ => false,
            }
    });
    PlanMeaning { restores, changes }
}

/// Plans deleting every observed resource, highest rank first.
pub fn plan_destroy(cluster: &str, target: Target, observed: &[Observed]) -> Plan {
    let mut steps: Vec<Step> = observed
        .iter()
        .map(|o| Step {
            action: Action::Delete,
            id: o.id.clone(),
            reason: "destroying the cluster".into(),
            current: Some(o.clone()),
        })
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.id.kind().rank()));
    Plan {
        cluster: cluster.into(),
        target,
        steps,
        rolling: Vec::new(),
    }
}

//! Resources as the master and agent account for them: scalars (cpus, mem, disk, ...) kept in
//! thousandths, so that sums and differences are exact as Mesos' fixed-point arithmetic is, and
//! ranges (ports) kept as sorted disjoint intervals.

use std::collections::BTreeMap;

use super::v1;

/// Mesos offers an agent's resources only when at least this many cpus...
const MIN_CPUS_MILLI: i64 = 10;
/// ...or this much memory (MB) is free.
const MIN_MEM_MILLI: i64 = 32_000;

/// Why a resource description could not be understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResourcesError {
    #[error("resource {0:?} is not name:value")]
    Syntax(String),
    #[error("resource {name:?}: value {value:?} is not a non-negative number")]
    Scalar { name: String, value: String },
    #[error("resource {name:?}: {value:?} is not a list of ranges like [31000-32000]")]
    Ranges { name: String, value: String },
    #[error("resource {0:?} has no value")]
    Missing(String),
}

/// Sorted, disjoint, non-adjacent inclusive intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// The set covering the given intervals (in any order, overlapping or not).
    pub fn new(mut intervals: Vec<(u64, u64)>) -> Self {
        intervals.retain(|(b, e)| b <= e);
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for (begin, end) in intervals {
            match merged.last_mut() {
                Some(last) if begin <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((begin, end)),
            }
        }
        Self(merged)
    }

    /// The intervals, sorted.
    pub fn intervals(&self) -> &[(u64, u64)] {
        &self.0
    }

    /// Whether no value is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every value, in order (e.g. each port).
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|&(b, e)| b..=e)
    }

    /// How many values the set holds.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|(b, e)| e - b + 1).sum()
    }

    fn union(&self, other: &Self) -> Self {
        Self::new(self.0.iter().chain(other.0.iter()).copied().collect())
    }

    fn contains(&self, other: &Self) -> bool {
        other.0.iter().all(|&(b, e)| self.0.iter().any(|&(sb, se)| sb <= b && e <= se))
    }

    fn difference(&self, other: &Self) -> Self {
        let mut out = Vec::new();
        for &(begin, end) in &self.0 {
            let mut cursor = begin;
            let mut open = true;
            for &(ob, oe) in &other.0 {
                if oe < cursor || ob > end {
                    continue;
                }
                if ob > cursor {
                    out.push((cursor, ob - 1));
                }
                if oe >= end {
                    open = false;
                    break;
                }
                cursor = oe + 1;
            }
            if open && cursor <= end {
                out.push((cursor, end));
            }
        }
        Self::new(out)
    }
}

impl std::fmt::Display for RangeSet {
    /// `[31000-31005, 31010-31010]`, as Mesos prints ranges in state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(b, e)| format!("{b}-{e}")).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

/// A bundle of resources: named scalars and named ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    scalars: BTreeMap<String, i64>,
    ranges: BTreeMap<String, RangeSet>,
}

fn to_milli(value: f64) -> i64 {
    (value * 1000.0).round() as i64
}

fn from_milli(value: i64) -> f64 {
    value as f64 / 1000.0
}

impl Resources {
    /// Parses the agent's `--resources` flag: `cpus:2;mem:4096;disk:10000;ports:[31000-32000]`.
    /// A role in parentheses (`cpus(*):2`) is accepted and ignored. Fails on anything else.
    pub fn parse(text: &str) -> Result<Self, ResourcesError> {
        let mut resources = Self::default();
        for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item.split_once(':').ok_or_else(|| ResourcesError::Syntax(item.to_owned()))?;
            let name = name.split('(').next().unwrap_or(name).trim().to_owned();
            let value = value.trim();
            if name.is_empty() || value.is_empty() {
                return Err(ResourcesError::Missing(item.to_owned()));
            }
            if value.starts_with('[') {
                let set = parse_ranges(value).ok_or_else(|| ResourcesError::Ranges {
                    name: name.clone(),
                    value: value.to_owned(),
                })?;
                resources.add_ranges(&name, &set);
            } else {
                let number: f64 =
                    value
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| ResourcesError::Scalar {
                            name: name.clone(),
                            value: value.to_owned(),
                        })?;
                *resources.scalars.entry(name).or_default() += to_milli(number);
            }
        }
        Ok(resources)
    }

    /// Reads v1 `Resource` messages; sets and unknown types are ignored (the sim offers none).
    pub fn from_v1(resources: &[v1::Resource]) -> Self {
        let mut out = Self::default();
        for resource in resources {
            match resource.kind {
                v1::ValueType::Scalar => {
                    let value = resource.scalar.map(|s| s.value).unwrap_or_default();
                    *out.scalars.entry(resource.name.clone()).or_default() += to_milli(value);
                }
                v1::ValueType::Ranges => {
                    let intervals = resource
                        .ranges
                        .iter()
                        .flat_map(|r| r.range.iter())
                        .map(|r| (r.begin, r.end))
                        .collect();
                    out.add_ranges(&resource.name, &RangeSet::new(intervals));
                }
                _ => {}
            }
        }
        out.normalize();
        out
    }

    /// v1 `Resource` messages, each with the deprecated `role: "*"` and, when `allocated_to` is
    /// given, `allocation_info.role` (as offers carry them).
    pub fn to_v1(&self, allocated_to: Option<&str>) -> Vec<v1::Resource> {
        let decorate = |mut r: v1::Resource| {
            r.role = Some("*".to_owned());
            r.allocation_info = allocated_to.map(|role| v1::AllocationInfo {
                role: Some(role.to_owned()),
            });
            r
        };
        let scalars = self
            .scalars
            .iter()
            .map(|(name, &value)| decorate(v1::Resource::scalar(name, from_milli(value))));
        let ranges = self.ranges.iter().map(|(name, set)| {
            let range = set.intervals().iter().map(|&(begin, end)| v1::Range { begin, end }).collect();
            decorate(v1::Resource::ranges(name, range))
        });
        scalars.chain(ranges).collect()
    }

    /// The JSON object `/master/state` shows: `{"cpus": 2.0, "mem": 4096.0, "ports": "[31000-32000]"}`,
    /// always with cpus, mem, disk and gpus.
    pub fn to_state_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::new();
        for name in ["cpus", "disk", "gpus", "mem"] {
            object.insert(name.to_owned(), serde_json::json!(self.scalar(name)));
        }
        for (name, &value) in &self.scalars {
            object.insert(name.clone(), serde_json::json!(from_milli(value)));
        }
        for (name, set) in &self.ranges {
            object.insert(name.clone(), serde_json::json!(set.to_string()));
        }
        serde_json::Value::Object(object)
    }

    /// The amount of a scalar (0 when absent).
    pub fn scalar(&self, name: &str) -> f64 {
        from_milli(self.scalars.get(name).copied().unwrap_or_default())
    }

    /// The values of a ranges resource (empty when absent).
    pub fn range_set(&self, name: &str) -> RangeSet {
        self.ranges.get(name).cloned().unwrap_or_default()
    }

    /// Whether there is nothing at all.
    pub fn is_empty(&self) -> bool {
        self.scalars.is_empty() && self.ranges.is_empty()
    }

    /// Whether there is enough to be worth offering: Mesos' minimum of 0.01 cpus or 32 MB memory.
    pub fn is_allocatable(&self) -> bool {
        self.scalars.get("cpus").copied().unwrap_or_default() >= MIN_CPUS_MILLI
            || self.scalars.get("mem").copied().unwrap_or_default() >= MIN_MEM_MILLI
    }

    /// Whether every scalar and every range of `other` is within `self`.
    pub fn contains(&self, other: &Self) -> bool {
        other
            .scalars
            .iter()
            .all(|(name, &v)| self.scalars.get(name).copied().unwrap_or_default() >= v)
            && other
                .ranges
                .iter()
                .all(|(name, set)| self.ranges.get(name).is_some_and(|mine| mine.contains(set)))
    }

    /// The sum of both.
    pub fn plus(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (name, &v) in &other.scalars {
            *out.scalars.entry(name.clone()).or_default() += v;
        }
        for (name, set) in &other.ranges {
            out.add_ranges(name, set);
        }
        out.normalize();
        out
    }

    /// What remains of `self` after taking `other` away (never negative: what `self` lacks is
    /// ignored).
    pub fn minus(&self, other: &Self) -> Self {
        let mut out = self.clone();
        for (name, &v) in &other.scalars {
            if let Some(mine) = out.scalars.get_mut(name) {
                *mine = (*mine - v).max(0);
            }
        }
        for (name, set) in &other.ranges {
            if let Some(mine) = out.ranges.get_mut(name) {
                *mine = mine.difference(set);
            }
        }
        out.normalize();
        out
    }

    fn add_ranges(&mut self, name: &str, set: &RangeSet) {
        let entry = self.ranges.entry(name.to_owned()).or_default();
        *entry = entry.union(set);
    }

    fn normalize(&mut self) {
        self.scalars.retain(|_, v| *v > 0);
        self.ranges.retain(|_, set| !set.is_empty());
    }
}

impl std::iter::Sum for Resources {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(Self::default(), |acc, r| acc.plus(&r))
    }
}

impl std::fmt::Display for Resources {
    /// The `--resources` syntax: `cpus:2;mem:4096;ports:[31000-32000]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scalars = self.scalars.iter().map(|(name, &v)| format!("{name}:{}", from_milli(v)));
        let ranges = self.ranges.iter().map(|(name, set)| format!("{name}:{set}"));
        let parts: Vec<String> = scalars.chain(ranges).collect();
        f.write_str(&parts.join(";"))
    }
}

fn parse_ranges(text: &str) -> Option<RangeSet> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    let mut intervals = Vec::new();
    for part in inner.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (begin, end) = part.split_once('-')?;
        let (begin, end) = (begin.trim().parse().ok()?, end.trim().parse().ok()?);
        if begin > end {
            return None;
        }
        intervals.push((begin, end));
    }
    Some(RangeSet::new(intervals))
}

/// Parses the agent's `--attributes` flag, `zone:a;rack:3`: numbers become SCALAR attributes,
/// anything else TEXT. Fails on an item without `:`.
pub fn parse_attributes(text: &str) -> Result<Vec<v1::Attribute>, ResourcesError> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (name, value) = item.split_once(':').ok_or_else(|| ResourcesError::Syntax(item.to_owned()))?;
            let (name, value) = (name.trim(), value.trim());
            Ok(match value.parse::<f64>() {
                Ok(number) if number.is_finite() => v1::Attribute::scalar(name, number),
                _ => v1::Attribute::text(name, value),
            })
        })
        .collect()
}

/// The JSON object `/master/state` shows for attributes: `{"zone": "a", "rack": 3.0}`.
pub fn attributes_state_json(attributes: &[v1::Attribute]) -> serde_json::Value {
    let object = attributes
        .iter()
        .map(|a| {
            let value = match (&a.text, a.scalar) {
                (Some(text), _) => serde_json::json!(text.value),
                (None, Some(scalar)) => serde_json::json!(scalar.value),
                _ => serde_json::Value::Null,
            };
            (a.name.clone(), value)
        })
        .collect();
    serde_json::Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_agent_flag() {
        let r = Resources::parse("cpus:2;mem:4096;disk:10000;ports:[31000-32000]").unwrap();
        assert_eq!(r.scalar("cpus"), 2.0);
        assert_eq!(r.scalar("mem"), 4096.0);
        assert_eq!(r.range_set("ports").len(), 1001);
        assert_eq!(r.to_string(), "cpus:2;disk:10000;mem:4096;ports:[31000-32000]");
        assert!(Resources::parse("cpus").is_err());
        assert!(Resources::parse("cpus:-1").is_err());
        assert!(Resources::parse("ports:[5-1]").is_err());
    }

    #[test]
    fn arithmetic_is_exact() {
        let total = Resources::parse("cpus:1;ports:[31000-31009]").unwrap();
        let tenth = Resources::parse("cpus:0.1").unwrap();
        let mut left = total.clone();
        for _ in 0..10 {
            assert!(left.contains(&tenth));
            left = left.minus(&tenth);
        }
        assert_eq!(left.scalar("cpus"), 0.0);
        assert!(!left.contains(&tenth));

        let port = Resources::parse("ports:[31003-31004]").unwrap();
        let rest = total.minus(&port);
        assert_eq!(rest.range_set("ports").to_string(), "[31000-31002, 31005-31009]");
        assert!(!rest.contains(&port));
        assert_eq!(rest.plus(&port), total);
    }

    #[test]
    fn v1_round_trip() {
        let r = Resources::parse("cpus:0.5;mem:128;ports:[1-2, 5-5]").unwrap();
        let wire = r.to_v1(Some("*"));
        assert_eq!(wire[0].allocation_info.as_ref().unwrap().role.as_deref(), Some("*"));
        assert_eq!(Resources::from_v1(&wire), r);
    }

    #[test]
    fn minimum_offerable() {
        assert!(Resources::parse("cpus:0.01").unwrap().is_allocatable());
        assert!(Resources::parse("mem:32").unwrap().is_allocatable());
        assert!(!Resources::parse("mem:31;disk:100").unwrap().is_allocatable());
    }

    #[test]
    fn attributes() {
        let a = parse_attributes("zone:a;rack:3").unwrap();
        assert_eq!(a[0], v1::Attribute::text("zone", "a"));
        assert_eq!(attributes_state_json(&a), serde_json::json!({"zone": "a", "rack": 3.0}));
    }
}

//! `paas-scenarios`: chaos for paas clusters, measured.
//!
//! - [`select`] and [`fault`]: which nodes a fault hits (seeded) and a pure plan of every
//!   node operation and network rule it applies, with the heal of each;
//! - [`active`]: faults in force, recorded before they are applied, so `paas chaos heal`
//!   can undo what an interrupted run left;
//! - [`probe`]: bounded app traffic through the external load balancer, every request kept;
//! - [`session`] and [`scenario`]: a run of steps (fault, wait, scale, deploy, assert) with
//!   the platform observed every second;
//! - [`journal`], [`hypothesis`] and [`report`]: availability, latency, recovery and its
//!   phases; the steady-state checks; a JSON journal and an SVG timeline;
//! - [`platform`]: the boundary, implemented on Docker by `paas_docker::chaos` and here by
//!   [`memory`] (a model for property tests).

pub mod active;
pub mod fault;
pub mod hypothesis;
pub mod journal;
pub mod memory;
pub mod platform;
pub mod probe;
pub mod report;
pub mod report_html;
pub mod scenario;
pub mod select;
pub mod session;

pub use fault::{Fault, FaultPlan};
pub use platform::{Component, Platform};
pub use scenario::{Scenario, Step};
pub use select::Selector;
pub use session::{Session, SessionConfig};

/// Serde for `Option<Duration>` written as `"30s"`, `"2m"`.
pub(crate) mod duration_opt {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&humantime::format_duration(*d).to_string()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
        let text: Option<String> = Option::deserialize(deserializer)?;
        text.map(|t| humantime::parse_duration(&t).map_err(|e| serde::de::Error::custom(format!("{t:?}: {e} (write e.g. \"90s\")"))))
            .transpose()
    }
}

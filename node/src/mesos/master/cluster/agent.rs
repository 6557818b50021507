//! An agent as the master tracks it.

use std::time::Instant;

use crate::mesos::resources::Resources;
use crate::mesos::v1;

/// A registered agent.
#[derive(Clone, Debug)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub address: AgentAddress,
    pub total: Resources,
    pub attributes: Vec<v1::Attribute>,
    pub registered_time: f64,
    pub last_ping: Instant,
}

/// Where the master reaches an agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentAddress {
    pub ip: String,
    pub port: u16,
}

impl AgentAddress {
    /// `http://ip:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }
}

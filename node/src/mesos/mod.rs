//! The sim's Mesos: a master and an agent that speak Mesos' public APIs (the v1 scheduler HTTP
//! API, `/master/state`, leader election in ZooKeeper), so that real frameworks and clients
//! cannot tell them from Mesos for what the PaaS uses.

pub mod agent;
pub mod detector;
pub mod master;
pub mod protocol;
pub mod recordio;
pub mod resources;
pub mod scheduler;
pub mod v1;

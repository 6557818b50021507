//! The sim's Mesos: a master and an agent that speak Mesos' public APIs (the v1 scheduler HTTP
//! API, `/master/state`, leader election in ZooKeeper), so that real frameworks and clients
//! cannot tell them from Mesos for what the PaaS uses.
//!
//! - [`v1`]: the JSON wire types of the scheduler API and the messages it carries;
//!   [`recordio`]: the framing of its event stream; [`scheduler`]: a client of it;
//!   [`detector`]: finding the leading master in ZooKeeper.
//! - [`master`]: election (`json.info_*` znodes holding MasterInfo), HTTP, and
//!   [`master::cluster::Cluster`], the synchronous model of agents, frameworks, tasks and offers
//!   that decides everything; the registry of admitted agents lives in ZooKeeper.
//! - [`agent`]: the link to the leading master, task sandboxes, the fetcher.
//! - [`protocol`]: the JSON the agent and the master exchange (internal to the sim).
//! - [`resources`]: exact resource arithmetic (scalars in thousandths, ports as ranges).
//!
//! Invariants: an offer never holds resources used by a task or held by another offer (so used
//! plus offered never exceeds an agent's total); only the leader changes the cluster; an agent
//! keeps a task's last update until the framework acknowledges it, so that no update is lost
//! across a master failover.

pub mod agent;
pub mod detector;
pub mod master;
pub mod metrics;
pub mod protocol;
pub mod recordio;
pub mod resources;
pub mod scheduler;
pub mod v1;

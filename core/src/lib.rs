//! `paas-core`: the cluster model and the deployment engine every backend shares.
//!
//! - [`spec`]: the user's `paas.toml` and its validation;
//! - [`topology`]: placement of nodes over AZs and the address plan;
//! - [`render`]: each node's configuration (ZooKeeper, Mesos, Marathon, nginx, the ELB);
//! - [`resource`] and [`graph`]: typed resources with dependencies, the desired graph;
//! - [`backend`]: the trait Docker, AWS and [`memory`] implement;
//! - [`engine`]: plan (pure), apply, destroy, refresh, state file and lock;
//! - [`http`]: the one HTTP client the CLI and the backends' health checks share.
//!
//! This crate does no I/O of its own beyond the state file and lock (and the requests callers
//! send through [`http`]); backends do the rest.

pub mod app;
pub mod backend;
pub mod engine;
pub mod graph;
pub mod http;
pub mod memory;
pub mod render;
pub mod resource;
pub mod spec;
pub mod topology;

pub use backend::{Backend, BackendError, NodeOp, Observed};
pub use engine::{Action, Engine, Plan};
pub use graph::{Graph, Target};
pub use spec::ClusterSpec;
pub use topology::{Role, Topology};

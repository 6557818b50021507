//! testcontainers-rs modules for the paas sim, for other projects' tests.
//!
//! - [`ZooKeeper`]: a standalone ZooKeeper server (Debian's, run by `paas-node supervise`);
//! - [`Master`]: one machine of the sim's master role — ZooKeeper, the Mesos master and
//!   Marathon — as a single-master cluster of its own;
//! - [`SimCluster`]: a whole cluster from a spec (masters, slaves, lbs, the elb and the admin
//!   entry), up and healthy, removed on drop.
//!
//! Every module uses the locally built node image (`paas sim images`), pinned by the content
//! hash of its inputs; [`ensure_images`] builds it if missing. `Default` gives a working
//! container; ready conditions are checked in order.

mod cluster;
mod node;

pub use cluster::{ClusterError, SimCluster};
pub use node::{Master, NodeImage, ZooKeeper, ensure_images};

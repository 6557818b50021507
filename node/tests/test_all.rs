//! One integration-test binary for `paas-node`: real ZooKeeper, real nginx, the programs as processes.

mod mesos;
mod support;

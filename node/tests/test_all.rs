//! One integration-test binary for `paas-node`: real ZooKeeper, real nginx, the programs as processes.

mod clients;
mod marathon;
mod mesos;
mod supervise;
mod support;
mod ui;

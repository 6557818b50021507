//! The integration-test harness: real servers on 127.0.0.1 at ports chosen at run time, and the
//! `paas-node` programs as child processes, all killed when dropped.

#![allow(dead_code)] // Each test module uses a different part of the harness.

pub mod clients;
pub mod framework;
pub mod mesos;
mod ports_and_waits;
pub mod process;
pub mod zookeeper;

pub use ports_and_waits::{eventually, free_port};

//! The integration-test harness: servers on 127.0.0.1 at ports chosen at run time, and
//! `paas-node lb-sync` as a child process, killed when dropped. The harness parts paas-node's
//! tests need too are theirs, included by path so there is one copy.

#![allow(dead_code)] // Each test module uses a different part of the harness.

#[path = "../../../node/tests/support/process.rs"]
pub mod process;

#[path = "../../../node/tests/support/nginx.rs"]
pub mod nginx;

#[path = "../../../node/tests/support/ports_and_waits.rs"]
mod ports_and_waits;

pub use ports_and_waits::{eventually, free_port};

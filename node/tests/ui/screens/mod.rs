//! The admin screens as an operator uses them, step by step, for the browser tests of both test
//! crates: `paas-node`'s loopback cluster (`node/tests/ui/`) and the sim cluster behind its
//! admin entry (`tests/ui_e2e.rs`, which includes this folder by path). Nothing here knows
//! which cluster serves the page: each step takes the [`Browser`] and the screen's base URL.

#![allow(dead_code)] // Each test uses the steps it needs.

pub mod browser;
pub mod marathon;
pub mod mesos;

pub use browser::Browser;

//! The admin screens in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver, against a loopback cluster of `paas-node` processes: the fast loop.
//! The same steps (`screens/`) run against a sim cluster behind its admin entry in the root
//! crate's `tests/ui_e2e.rs`; what only a loopback cluster makes easy stays here (rolling back
//! to a version, a second master that does not lead, the relay's refusals).

mod marathon;
mod mesos;
pub mod screens;

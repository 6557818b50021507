//! The admin screens in a real headless Chromium (Debian's `chromium` and `chromium-driver`),
//! driven over WebDriver, against a loopback cluster of `paas-node` processes.

mod browser;
mod marathon;
mod mesos;

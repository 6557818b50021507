//! One integration-test binary for `paas-docker`: real Docker, real images, real clusters.

mod admin_entry;
mod cluster;
mod support;
mod tasks;

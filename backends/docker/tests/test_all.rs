//! One integration-test binary for `paas-docker`: real Docker, real images, real clusters.

mod cluster;
mod support;

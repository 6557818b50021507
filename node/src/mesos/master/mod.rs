//! `paas-node mesos-master`.

pub mod cluster;

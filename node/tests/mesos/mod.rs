//! Mesos master and agent, tested as processes against a real ZooKeeper ensemble.

mod accounting;
mod admin_entry;
mod agent_loss;
mod agent_tasks;
pub mod docker_support;
mod docker_tasks;
mod endpoints;
mod failover;
mod scheduler_api;
mod scheduler_client;
mod zookeeper_ensemble;

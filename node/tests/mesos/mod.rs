//! Mesos master and agent, tested as processes against a real ZooKeeper ensemble.

mod zookeeper_ensemble;

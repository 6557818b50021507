//! One integration-test binary for `paas-node`: real ZooKeeper, real nginx, the programs as processes.

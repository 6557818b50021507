//! Programs that run on a cluster node. Each lives in its own module and exposes
//! `Args` (its flags, named as the upstream program names them) and `run`.
pub mod lb_sync;
pub mod marathon;
pub mod mesos;
pub mod netdelay;
pub mod supervise;
pub mod zk;

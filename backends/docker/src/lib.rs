//! paas backend on local Docker containers: the sim.
//!
//! - [`DockerBackend`] implements the core `Backend`: a Docker network per cluster, a container
//!   per node with its static address, and an HAProxy container as the external load balancer,
//!   every object labelled (see [`labels`]) so a cluster can be found again with no state file.
//! - [`images`] builds the images every node runs, locally, with no registry; [`local_image`]
//!   builds an image from a local Dockerfile (the test app the suites deploy as a Docker app).
//! - [`tasks`]: what surrounds a slave's Docker tasks (its task network), and the slave's fate
//!   carried to them.
//! - [`chaos`]: `paas_scenarios::Platform` on the sim, for `paas chaos`.

pub mod backend;
pub mod chaos;
pub mod container;
pub mod health;
pub mod images;
pub mod labels;
pub mod local_image;
pub mod sim;
pub mod tasks;

pub use backend::{ConnectError, DockerBackend, connect_docker};

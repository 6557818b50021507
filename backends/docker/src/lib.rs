//! paas backend on local Docker containers.

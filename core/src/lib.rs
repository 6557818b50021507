//! paas-core

//! paas backend on AWS.

//! One module per command.

pub mod app;
pub mod aws;
pub mod chaos;
pub mod completions;
pub mod init;
pub mod plan;
pub mod sim;
pub mod validate;

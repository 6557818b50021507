//! One module per command.

pub mod completions;
pub mod init;
pub mod plan;
pub mod validate;

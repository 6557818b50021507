//! Debian's nginx under a temporary prefix, for the tests of paas-node and lb-sync (lb-sync
//! includes this file by path, so both find and start nginx alike).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The nginx executable, or a panic naming the package to install.
pub fn nginx_bin() -> PathBuf {
    for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("nginx not found: install the Debian package `nginx` (apt-get install -y nginx)");
}

/// `nginx -p <dir> -c <dir>/nginx.conf`: nginx with its prefix and main config in `dir`, for
/// signals such as `-s stop`.
pub fn nginx_in(dir: &Path) -> Command {
    let mut command = Command::new(nginx_bin());
    command.arg("-p").arg(dir).arg("-c").arg(dir.join("nginx.conf"));
    command
}

/// [`nginx_in`] logging to `<dir>/error.log` from its first line (the compiled-in log path is
/// not the tests' to write), to run nginx or test its config.
pub fn nginx_logged_in(dir: &Path) -> Command {
    let mut command = nginx_in(dir);
    command.arg("-e").arg(dir.join("error.log"));
    command
}

//! The nginx that serves the routes: the routes file is checked with `nginx -t` in the context
//! of the main config before it replaces the live one (atomically), then nginx is reloaded.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// Where Debian's nginx keeps its master's pid unless the main config says otherwise.
const DEFAULT_PID_FILE: &str = "/run/nginx.pid";

/// How long one `nginx -t` or `nginx -s reload` may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

/// The nginx installation lb-sync writes routes for.
#[derive(Debug, Clone)]
pub struct Nginx {
    /// The nginx executable.
    pub bin: PathBuf,
    /// The main config, which `include`s the routes file; used to check and to reload.
    pub main_conf: PathBuf,
    /// nginx's `-p` prefix, when not the compiled-in one.
    pub prefix: Option<PathBuf>,
    /// The routes file lb-sync owns.
    pub routes: PathBuf,
}

/// Why routes could not be installed or nginx not reloaded.
#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the main config {path}")]
    ReadMainConf {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot run `{bin} {action}`")]
    Spawn {
        bin: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("`{bin} {action}` did not finish within {COMMAND_TIMEOUT:?}")]
    Timeout { bin: PathBuf, action: &'static str },
    #[error("nginx rejected the routes: {output}")]
    Rejected { output: String },
    #[error("nginx reload failed: {output}")]
    Reload { output: String },
}

impl Nginx {
    /// Checks `routes` with `nginx -t` and, only if nginx accepts it, atomically replaces the
    /// routes file with it. Does not reload nginx.
    ///
    /// The check runs against a copy of the main config whose `include` of the routes file points
    /// at the candidate, so conflicts with the main config are caught too; if the main config
    /// does not name the routes file, the candidate is checked alone inside an `http {}` block.
    ///
    /// Fails with [`NginxError::Rejected`] when nginx refuses the candidate (the live file is then
    /// untouched), or when files cannot be written or nginx cannot be run.
    pub async fn install(&self, routes: &str) -> Result<(), NginxError> {
        let candidate = self.stage(routes).await?;
        tokio::fs::rename(&candidate, &self.routes)
            .await
            .map_err(|source| NginxError::Write {
                path: self.routes.clone(),
                source,
            })?;
        // Make the rename itself durable, so a crash cannot bring back the old file.
        if let Some(dir) = self.routes.parent()
            && let Ok(dir) = tokio::fs::File::open(dir).await
        {
            let _ = dir.sync_all().await;
        }
        Ok(())
    }

    /// Checks `routes` with `nginx -t` as [`Nginx::install`] does, without installing them.
    ///
    /// Fails with [`NginxError::Rejected`] when nginx refuses them, or when files cannot be
    /// written or nginx cannot be run.
    pub async fn check(&self, routes: &str) -> Result<(), NginxError> {
        let candidate = self.stage(routes).await?;
        let _ = tokio::fs::remove_file(&candidate).await;
        Ok(())
    }

    /// Writes `routes` to the candidate file beside the routes file and checks it; returns the
    /// candidate's path if nginx accepts it, removes it otherwise.
    async fn stage(&self, routes: &str) -> Result<PathBuf, NginxError> {
        let candidate = sibling(&self.routes, "candidate");
        if let Some(dir) = self.routes.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|source| NginxError::Write {
                path: dir.to_owned(),
                source,
            })?;
        }
        write_synced(&candidate, routes.as_bytes()).await?;
        let verdict = match self.check_config(&candidate).await {
            Ok(check) => {
                let verdict = self.test(&check).await;
                let _ = tokio::fs::remove_file(&check).await;
                verdict
            }
            Err(error) => Err(error),
        };
        match verdict {
            Ok(()) => Ok(candidate),
            Err(error) => {
                let _ = tokio::fs::remove_file(&candidate).await;
                Err(error)
            }
        }
    }

    /// Asks the running nginx to reload its config: SIGHUP to the master named in the main
    /// config's pid file, else `nginx -s reload`.
    ///
    /// Fails when nginx cannot be run or signalled, e.g. because it is not running; nginx itself
    /// keeps its old config if the new one does not load.
    pub async fn reload(&self) -> Result<(), NginxError> {
        // `nginx -s reload` parses the whole config (resolving every upstream host) only to find
        // the same pid file: signalling directly saves that on every change.
        if let Some(pid) = self.master_pid().await {
            // SAFETY: kill(2) takes plain integers and touches no memory of this process.
            if unsafe { libc::kill(pid, libc::SIGHUP) } == 0 {
                return Ok(());
            }
        }
        let mut command = self.command();
        command.arg("-c").arg(&self.main_conf).args(["-s", "reload"]);
        let output = self.output(command, "-s reload").await?;
        if !output.status.success() {
            return Err(NginxError::Reload { output: describe(&output) });
        }
        Ok(())
    }

    /// The master's pid, from the pid file the main config names (nginx's compiled-in default
    /// when it names none); `None` when it cannot be read.
    async fn master_pid(&self) -> Option<i32> {
        let main = tokio::fs::read_to_string(&self.main_conf).await.ok()?;
        let named = main
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix("pid ").and_then(|rest| rest.trim().strip_suffix(';')))
            .map(|path| path.trim().trim_matches(['"', '\'']).to_owned());
        let path = PathBuf::from(named.unwrap_or_else(|| DEFAULT_PID_FILE.to_owned()));
        let path = match (&self.prefix, path.is_relative()) {
            (Some(prefix), true) => prefix.join(path),
            _ => path,
        };
        let pid: i32 = tokio::fs::read_to_string(path).await.ok()?.trim().parse().ok()?;
        (pid > 1).then_some(pid)
    }

    /// Writes the config `nginx -t` checks: the main config with the routes file swapped for
    /// `candidate`, beside the main config so relative paths in it still resolve.
    async fn check_config(&self, candidate: &Path) -> Result<PathBuf, NginxError> {
        let main = tokio::fs::read_to_string(&self.main_conf)
            .await
            .map_err(|source| NginxError::ReadMainConf {
                path: self.main_conf.clone(),
                source,
            })?;
        let routes = self.routes.to_string_lossy();
        let candidate = candidate.to_string_lossy();
        let (path, text) = if main.contains(routes.as_ref()) {
            (sibling(&self.main_conf, "lb-sync-check"), main.replace(routes.as_ref(), &candidate))
        } else {
            (
                sibling(&self.routes, "check"),
                format!("events {{\n}}\nhttp {{\n    include {candidate};\n}}\n"),
            )
        };
        write_synced(&path, text.as_bytes()).await?;
        Ok(path)
    }

    async fn test(&self, config: &Path) -> Result<(), NginxError> {
        let mut command = self.command();
        command.args(["-t", "-q", "-c"]).arg(config);
        let output = self.output(command, "-t").await?;
        if !output.status.success() {
            return Err(NginxError::Rejected { output: describe(&output) });
        }
        Ok(())
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        if let Some(prefix) = &self.prefix {
            command.arg("-p").arg(prefix);
        }
        command.kill_on_drop(true);
        command
    }

    async fn output(&self, mut command: Command, action: &'static str) -> Result<std::process::Output, NginxError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, command.output()).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(source)) => Err(NginxError::Spawn {
                bin: self.bin.clone(),
                action,
                source,
            }),
            Err(_) => Err(NginxError::Timeout {
                bin: self.bin.clone(),
                action,
            }),
        }
    }
}

/// A hidden file beside `path`: `dir/.name.suffix`. Hidden, so `include dir/*.conf` globs in the
/// main config never pick it up.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{suffix}"))
}

async fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), NginxError> {
    let write = async {
        let mut file = tokio::fs::File::create(path).await?;
        tokio::io::AsyncWriteExt::write_all(&mut file, bytes).await?;
        file.sync_all().await
    };
    write.await.map_err(|source| NginxError::Write {
        path: path.to_owned(),
        source,
    })
}

fn describe(output: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    format!("{} ({})", text.trim(), output.status)
}

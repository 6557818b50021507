//! One apply at a time per cluster and backend.
//!
//! The lock is a file created exclusively, holding who took it. A lock left by a process that
//! no longer runs on this host (killed mid-apply) is taken over, so an interrupted run never
//! blocks the next one; a live holder makes the second apply fail at once, naming it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    pub command: String,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ago = now().saturating_sub(self.started_at);
        write!(f, "`{}` (pid {} on {}, started {ago}s ago)", self.command, self.pid, self.host)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another paas is changing this cluster: {holder}; wait for it, or if it is gone remove {path}")]
    Held { holder: LockHolder, path: PathBuf },
    #[error("cannot take lock {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes `<dir>/<name>.lock` for `command`. Fails with [`LockError::Held`] while a live
    /// process holds it.
    pub fn acquire(dir: &Path, name: &str, command: &str) -> Result<Lock, LockError> {
        let path = dir.join(format!("{name}.lock"));
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let me = LockHolder {
            pid: std::process::id(),
            host: this_host(),
            started_at: now(),
            command: command.into(),
        };
        // Two tries: the second after removing a stale lock.
        for _ in 0..2 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(serde_json::to_string(&me).expect("serializes").as_bytes())
                        .map_err(io)?;
                    file.sync_all().map_err(io)?;
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<LockHolder>(&t).ok());
                    match holder {
                        Some(h) if h.host != me.host || process_alive(h.pid) => return Err(LockError::Held { holder: h, path }),
                        // Stale (its process is gone) or torn (killed while writing it).
                        _ => {
                            tracing::warn!(path = %path.display(), "taking over a lock left by a process that is gone");
                            std::fs::remove_file(&path).map_err(io)?;
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LockError::Io {
            path,
            source: std::io::Error::other("lock file reappeared while taking it"),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder_and_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "sim", "paas sim up").unwrap();
        let err = Lock::acquire(dir.path(), "sim", "paas sim down").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("paas sim up") && text.contains(&std::process::id().to_string()),
            "{text}"
        );
        drop(first);
        Lock::acquire(dir.path(), "sim", "paas sim down").unwrap();
    }

    #[test]
    fn lock_of_a_dead_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let dead = LockHolder {
            pid: u32::MAX - 1,
            host: this_host(),
            started_at: 0,
            command: "paas sim up".into(),
        };
        std::fs::write(dir.path().join("sim.lock"), serde_json::to_string(&dead).unwrap()).unwrap();
        Lock::acquire(dir.path(), "sim", "paas sim up").unwrap();
        std::fs::write(dir.path().join("aws.lock"), "{torn").unwrap();
        Lock::acquire(dir.path(), "aws", "paas aws up").unwrap();
    }
}

//! `paas-node` programs run as child processes, killed on drop. Shared by the paas-node and
//! lb-sync test binaries (lb-sync includes this file by path), so both start the binary alike.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The `paas-node` binary: the one Cargo built for these tests when they belong to paas-node;
/// else (lb-sync, which ships as `paas-node lb-sync`) `PAAS_NODE_BINARY`, else `paas-node` in
/// the target directory this test binary was built into (`target/debug/deps/..`). Panics naming
/// the build command when it is missing.
pub fn paas_node_binary() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_paas-node") {
        return PathBuf::from(path);
    }
    if let Some(path) = std::env::var_os("PAAS_NODE_BINARY") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("finding this test binary's path");
    let candidates: Vec<PathBuf> = exe.ancestors().skip(1).take(2).map(|dir| dir.join("paas-node")).collect();
    candidates.iter().find(|path| path.is_file()).cloned().unwrap_or_else(|| {
        panic!(
            "paas-node is missing (looked at {candidates:?}); build it with `cargo build --workspace --bins --tests` or set PAAS_NODE_BINARY"
        )
    })
}

/// A running `paas-node <program> <args>`; killed (SIGKILL) when dropped or on [`NodeProcess::kill`].
/// Its output goes to a log file, printed when the test fails (panics) so that it shows with
/// the failure and nowhere else.
pub struct NodeProcess {
    /// What it runs, for messages.
    pub name: String,
    child: Option<Child>,
    log: tempfile::NamedTempFile,
}

impl NodeProcess {
    /// Starts `paas-node <program> <args...>` with its output logged and `RUST_LOG` defaulting
    /// to `info`. Panics when the binary cannot start.
    pub fn spawn<I, S>(program: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let log = tempfile::NamedTempFile::new().expect("creating a log file");
        let output = log.reopen().expect("opening the log file");
        let mut command = Command::new(paas_node_binary());
        command
            .arg(program)
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("cloning the log handle"))
            .stderr(output);
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info");
        }
        let child = command.spawn().unwrap_or_else(|e| panic!("starting paas-node {program}: {e}"));
        Self {
            name: program.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process at once (SIGKILL), like losing the machine, and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Waits until the process has logged `line` more than `before` times; panics after
    /// `timeout`. Lets a test wait for the moment the program did something rather than sleep.
    pub async fn wait_logged(&self, line: &str, before: usize, timeout: std::time::Duration) {
        super::eventually(timeout, &format!("{} to log {line:?}", self.name), || async {
            (self.log_text().matches(line).count() > before).then_some(())
        })
        .await;
    }

    /// Whether the process has exited (it is reaped then).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(Some(_))) | None => true,
            Some(Ok(None)) => false,
            Some(Err(_)) => true,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let pid = self.pid();
        self.kill();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(80)..].join("\n");
            eprintln!("--- last lines of paas-node {} (pid {pid:?}) ---\n{tail}", self.name);
        }
    }
}

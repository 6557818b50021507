//! `paas-node supervise` with real processes: files written, programs run, logged, restarted,
//! orphans reaped, SIGTERM passed on.

mod core_config;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::eventually;
use crate::support::process::paas_node_binary;

/// A supervisor running a node configuration in a temporary directory; killed when dropped.
struct Supervisor {
    dir: tempfile::TempDir,
    child: Child,
}

impl Supervisor {
    /// Starts `paas-node supervise` on `programs` (name, args) and `files` (path under the
    /// temporary directory, content).
    fn start(programs: &[(&str, &[&str])], files: &[(&str, &str)]) -> Supervisor {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        std::fs::write(dir.path().join("node.json"), config_json(dir.path(), programs, files)).unwrap();
        Supervisor::start_in(dir)
    }

    /// Starts `paas-node supervise` on the `node.json` (and whatever else) already in `dir`.
    fn start_in(dir: tempfile::TempDir) -> Supervisor {
        let config = dir.path().join("node.json");
        let child = Command::new(paas_node_binary())
            .arg("supervise")
            .arg("--config")
            .arg(&config)
            .arg("--log-dir")
            .arg(dir.path().join("logs"))
            .args(["--min-backoff", "200ms", "--max-backoff", "1s", "--grace", "3s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting paas-node supervise");
        Supervisor { dir, child }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn log(&self, program: &str) -> String {
        std::fs::read_to_string(self.path(&format!("logs/{program}.log"))).unwrap_or_default()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits (bounded) for the supervisor to exit; its stdout and exit code.
    async fn wait_exit(&mut self, timeout: Duration) -> (String, Option<i32>) {
        let status = eventually(timeout, "the supervisor to exit", || {
            let status = self.child.try_wait().expect("polling the supervisor");
            async move { status }
        })
        .await;
        let mut out = String::new();
        std::io::Read::read_to_string(self.child.stdout.as_mut().unwrap(), &mut out).unwrap();
        (out, status.code())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node configuration of `programs` (name, args) and `files` (path under `dir`, content);
/// `{dir}` in an argument stands for `dir`.
fn config_json(dir: &Path, programs: &[(&str, &[&str])], files: &[(&str, &str)]) -> String {
    let files: Vec<_> = files
        .iter()
        .map(|(path, content)| serde_json::json!({"path": dir.join(path), "content": content}))
        .collect();
    let programs: Vec<_> = programs
        .iter()
        .map(|(name, args)| {
            let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &dir.display().to_string())).collect();
            serde_json::json!({"name": name, "args": args})
        })
        .collect();
    serde_json::json!({"files": files, "programs": programs}).to_string()
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

#[tokio::test]
async fn writes_the_files_before_the_programs_start() {
    // The program prints the file the supervisor wrote: it must exist before programs start.
    let sup = Supervisor::start(
        &[("sh", &["-c", "cat {dir}/etc/app/app.conf; sleep 30"])],
        &[("etc/app/app.conf", "listen 80\n")],
    );
    eventually(Duration::from_secs(5), "the file's content in the program's log", || {
        let log = sup.log("sh");
        async move { log.contains("listen 80").then_some(()) }
    })
    .await;
    assert_eq!(read(&sup.path("etc/app/app.conf")).as_deref(), Some("listen 80\n"));
}

#[tokio::test]
async fn a_configuration_staged_while_stopped_is_installed_when_the_supervisor_starts() {
    let dir = tempfile::tempdir().unwrap();
    let old = config_json(dir.path(), &[("sh", &["-c", "sleep 30"])], &[("app.conf", "old\n")]);
    let new = config_json(
        dir.path(),
        &[("sh", &["-c", "cat {dir}/app.conf; sleep 30"])],
        &[("app.conf", "new\n")],
    );
    std::fs::write(dir.path().join("node.json"), &old).unwrap();
    std::fs::write(dir.path().join("node.next.json"), &new).unwrap();
    let sup = Supervisor::start_in(dir);
    // The staged configuration's program runs, on the staged configuration's file.
    eventually(Duration::from_secs(5), "the staged file's content in the program's log", || {
        let log = sup.log("sh");
        async move { log.contains("new").then_some(()) }
    })
    .await;
    assert_eq!(read(&sup.path("node.json")), Some(new), "node.json is the staged configuration");
    assert!(
        !sup.path("node.next.json").exists(),
        "the staged configuration was moved, not copied"
    );
}

#[tokio::test]
async fn configure_installs_the_staged_files_on_a_running_node_and_refuses_when_nothing_is_staged() {
    let sup = Supervisor::start(&[("sh", &["-c", "sleep 30"])], &[("app.conf", "old\n")]);
    eventually(Duration::from_secs(5), "the first file", || {
        let content = read(&sup.path("app.conf"));
        async move { (content.as_deref() == Some("old\n")).then_some(()) }
    })
    .await;
    let configure = || {
        Command::new(paas_node_binary())
            .arg("configure")
            .arg("--config")
            .arg(sup.path("node.json"))
            .output()
            .expect("running paas-node configure")
    };
    // Shorter than what it replaces: nothing of the old file may remain.
    let new = config_json(sup.dir.path(), &[("sh", &["-c", "sleep 30"])], &[("app.conf", "n\n")]);
    std::fs::write(sup.path("node.next.json"), &new).unwrap();
    let installed = configure();
    assert!(installed.status.success(), "{installed:?}");
    assert_eq!(read(&sup.path("app.conf")).as_deref(), Some("n\n"));
    assert_eq!(read(&sup.path("node.json")), Some(new));
    assert!(!sup.path("node.next.json").exists());

    let refused = configure();
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("no configuration is staged at") && stderr.contains("node.next.json"),
        "{stderr}"
    );
    assert_eq!(
        read(&sup.path("app.conf")).as_deref(),
        Some("n\n"),
        "a refused configure changes nothing"
    );
}

#[tokio::test]
async fn a_program_that_cannot_start_is_retried_not_fatal() {
    let sup = Supervisor::start(&[("no-such-program", &[])], &[]);
    eventually(Duration::from_secs(5), "two failed start attempts in the log", || {
        let attempts = sup.log("no-such-program").matches("cannot start").count();
        async move { (attempts >= 2).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn program_output_goes_to_its_log_file_and_prefixed_to_stdout() {
    let mut sup = Supervisor::start(&[("sh", &["-c", "echo hello from the program; echo oops >&2; sleep 30"])], &[]);
    eventually(Duration::from_secs(5), "both lines in the program's log", || {
        let log = sup.log("sh");
        async move { (log.contains("hello from the program") && log.contains("oops")).then_some(()) }
    })
    .await;
    sup.signal(libc::SIGTERM);
    let (stdout, code) = sup.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "stdout: {stdout}");
    assert!(stdout.contains("[sh] hello from the program"), "stdout: {stdout}");
}

#[tokio::test]
async fn restarts_a_crashed_program_with_backoff() {
    let sup = Supervisor::start(&[("sh", &["-c", "echo run; exit 3"])], &[]);
    eventually(Duration::from_secs(10), "three runs of the crashing program", || {
        let log = sup.log("sh");
        async move { (log.matches("\nrun").count() + usize::from(log.starts_with("run")) >= 3).then_some(log) }
    })
    .await;
    let log = sup.log("sh");
    assert!(log.contains("exited with status 3"), "log: {log}");
    // Backoff doubles: 200ms, 400ms, 800ms, then capped at 1s.
    assert!(
        log.contains("restarting in 200ms") && log.contains("restarting in 400ms"),
        "log: {log}"
    );
}

#[tokio::test]
async fn forwards_sigterm_and_exits_when_the_programs_are_gone() {
    let script = "trap 'echo got-term > {dir}/marker; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    let mut sup = Supervisor::start(&[("sh", &["-c", script])], &[]);
    let marker = sup.path("marker");
    eventually(Duration::from_secs(5), "the program to be ready", || {
        let ready = sup.log("sh").contains("ready");
        async move { ready.then_some(()) }
    })
    .await;
    sup.signal(libc::SIGTERM);
    let (stdout, code) = sup.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "stdout: {stdout}");
    assert_eq!(read(&marker).as_deref(), Some("got-term\n"), "stdout: {stdout}");
}

#[tokio::test]
async fn kills_a_program_that_ignores_sigterm_after_the_grace_period() {
    let mut sup = Supervisor::start(&[("sh", &["-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"])], &[]);
    eventually(Duration::from_secs(5), "the program to be ready", || {
        let ready = sup.log("sh").contains("ready");
        async move { ready.then_some(()) }
    })
    .await;
    let started = std::time::Instant::now();
    sup.signal(libc::SIGINT);
    let (stdout, code) = sup.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "stdout: {stdout}");
    assert!(started.elapsed() >= Duration::from_secs(3), "exited before the 3s grace period");
    assert!(stdout.contains("did not stop within"), "stdout: {stdout}");
}

#[tokio::test]
async fn reaps_orphans_left_by_programs() {
    // The inner shell exits at once, leaving `sleep` orphaned; the orphan is re-parented to
    // the supervisor (a subreaper, as PID 1 is) and must not stay a zombie when it ends.
    let sup = Supervisor::start(&[("sh", &["-c", "sh -c 'sleep 2 & echo orphan $!'; sleep 30"])], &[]);
    let orphan: u32 = eventually(Duration::from_secs(5), "the orphan to be spawned", || {
        let pid = sup.log("sh").lines().find_map(|l| l.strip_prefix("orphan ")?.trim().parse().ok());
        async move { pid }
    })
    .await;
    let supervisor = sup.child.id();
    eventually(Duration::from_secs(5), "the orphan to be re-parented to the supervisor", || {
        let parent = parent_of(orphan);
        async move { (parent == Some(supervisor)).then_some(()) }
    })
    .await;
    // Ended and reaped: a zombie keeps its /proc entry until its parent waits for it, so the
    // entry going away is the proof. An orphan left a zombie fails this wait.
    eventually(Duration::from_secs(10), "the orphan to be reaped", || {
        let gone = !Path::new(&format!("/proc/{orphan}")).exists();
        async move { gone.then_some(()) }
    })
    .await;
    let zombies = zombie_children(supervisor);
    assert!(zombies.is_empty(), "zombie children of the supervisor: {zombies:?}");
}

/// The parent of a live process (`None` once it is gone).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (in parentheses): state, then the parent's pid.
    stat.rsplit_once(") ")?.1.split_whitespace().nth(1)?.parse().ok()
}

/// PIDs of zombie processes whose parent is `parent`.
fn zombie_children(parent: u32) -> Vec<u32> {
    let mut zombies = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state, ppid, ...
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (state, ppid) = (fields.next(), fields.next().and_then(|p| p.parse::<u32>().ok()));
        if state == Some("Z") && ppid == Some(parent) {
            zombies.push(pid);
        }
    }
    zombies
}

//! Third-party client scripts (node/tests/clients/*.py) run with the Python of the venv that
//! `scripts/install-deps` makes, so that the clients are the pinned upstream packages.

use std::path::PathBuf;
use std::process::Command;

/// The venv's directory: `$PAAS_CLIENTS_VENV`, else `.venv-clients` at the workspace root.
pub fn venv() -> PathBuf {
    std::env::var_os("PAAS_CLIENTS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv-clients"))
}

/// The venv's Python. Panics, naming the fix, when the venv or one of its clients is missing:
/// these tests never skip.
pub fn python() -> PathBuf {
    let python = venv().join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/install-deps to create the venv with the pinned third-party clients",
        python.display()
    );
    let check = Command::new(&python)
        .args(["-c", "import marathon, pymesos, avmesos.cli, http_parser.parser"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    assert!(
        check.status.success(),
        "the venv {} lacks a client (run scripts/install-deps): {}",
        venv().display(),
        String::from_utf8_lossy(&check.stderr)
    );
    python
}

/// The path of the client script `name` (e.g. `marathon_python.py`).
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

/// Runs `python <script> <args>` on a blocking thread and panics with its whole output unless
/// it exits 0; returns its stdout.
pub async fn run_script(name: &str, args: Vec<String>) -> String {
    let python = python();
    let path = script(name);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&path)
            .args(&args)
            // Output as it happens, so that a failure shows how far the client got.
            .env("PYTHONUNBUFFERED", "1")
            // No bytecode caches in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("running {} {}: {e}", python.display(), path.display()))
    })
    .await
    .expect("the client script's thread");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client script {name} failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    stdout
}

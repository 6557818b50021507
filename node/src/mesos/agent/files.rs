//! The agent's `/files` endpoints as Mesos defines them (`src/files/files.cpp`): `browse` lists
//! a directory, `read` returns `{"data", "offset"}` of a file, `download` the raw file. Only
//! paths inside the agent's work directory, where the task sandboxes are, can be reached: like
//! Mesos' attached paths, anything else is not found, and a path that leaves the work directory
//! once resolved (`..`, a symbolic link) is refused as inaccessible.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::Agent;

/// Mesos caps one read at 16 pages.
const MAX_READ: u64 = 16 * 4096;

/// `/files/browse`, `/files/read` and `/files/download` (each also as `.json`, as Mesos has them).
pub fn routes() -> Router<Arc<Agent>> {
    let mut router = Router::new();
    for (name, handler) in [("browse", get(browse)), ("read", get(read)), ("download", get(download))] {
        router = router
            .route(&format!("/files/{name}"), handler.clone())
            .route(&format!("/files/{name}.json"), handler);
    }
    router
}

/// Why a path cannot be served, with Mesos' status for it.
#[derive(Debug, thiserror::Error)]
enum FilesError {
    /// 400, with Mesos' message.
    #[error("{0}")]
    Invalid(String),
    /// 404: not under the work directory, or not there.
    #[error("")]
    NotFound,
}

impl IntoResponse for FilesError {
    fn into_response(self) -> Response {
        match self {
            FilesError::Invalid(message) => (StatusCode::BAD_REQUEST, message).into_response(),
            FilesError::NotFound => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

/// The `path` parameter, required and non-empty.
fn path_param(query: &BTreeMap<String, String>) -> Result<&str, FilesError> {
    query
        .get("path")
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| FilesError::Invalid("Expecting 'path=value' in query.\n".into()))
}

/// The real path of `requested`, which must lie inside `root` (the work directory).
fn resolve(root: &Path, requested: &str) -> Result<PathBuf, FilesError> {
    let requested = Path::new(requested);
    // Compared without resolving first: a path that does not even name the work directory is
    // simply not one the agent serves.
    let lexical_root: PathBuf = root.components().collect();
    if !requested.is_absolute() || !requested.starts_with(&lexical_root) {
        return Err(FilesError::NotFound);
    }
    let real_root = std::fs::canonicalize(root).map_err(|_| FilesError::NotFound)?;
    let real = match std::fs::canonicalize(requested) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(FilesError::NotFound),
        Err(e) => {
            return Err(FilesError::Invalid(format!(
                "Failed to determine canonical path of '{}': {e}.\n",
                requested.display()
            )));
        }
    };
    if !real.starts_with(&real_root) {
        return Err(FilesError::Invalid(format!("'{}' is inaccessible.\n", requested.display())));
    }
    Ok(real)
}

/// `ls -l`'s mode string, as Mesos' `model(FileInfo)` writes it.
fn mode_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFLNK => 'l',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::from(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn user_name(uid: u32) -> String {
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let entry = libc::getpwuid(uid);
        if entry.is_null() {
            return uid.to_string();
        }
        std::ffi::CStr::from_ptr((*entry).pw_name).to_string_lossy().into_owned()
    }
}

fn group_name(gid: u32) -> String {
    // SAFETY: as in `user_name`.
    unsafe {
        let entry = libc::getgrgid(gid);
        if entry.is_null() {
            return gid.to_string();
        }
        std::ffi::CStr::from_ptr((*entry).gr_name).to_string_lossy().into_owned()
    }
}

/// One entry of a listing: Mesos' FileInfo model; `path` is the requested path joined with the
/// entry's name.
fn file_info(shown: &str, metadata: &std::fs::Metadata) -> Value {
    json!({
        "path": shown,
        "nlink": metadata.nlink(),
        "size": metadata.size(),
        "mtime": metadata.mtime() as f64,
        "mode": mode_string(metadata.mode()),
        "uid": user_name(metadata.uid()),
        "gid": group_name(metadata.gid()),
    })
}

fn browse_blocking(root: &Path, requested: &str) -> Result<Value, FilesError> {
    let real = resolve(root, requested)?;
    let mut listing = BTreeMap::new();
    // A file (not a directory) lists as nothing, as `os::ls` fails on it in Mesos.
    if let Ok(entries) = std::fs::read_dir(&real) {
        for entry in entries.flatten() {
            let Ok(metadata) = std::fs::metadata(entry.path()) else {
                continue;
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            let shown = format!("{}/{name}", requested.trim_end_matches('/'));
            listing.insert(shown.clone(), file_info(&shown, &metadata));
        }
    }
    Ok(Value::Array(listing.into_values().collect()))
}

/// An `offset`/`length` parameter: a whole number ≥ -1 (-1 as Mesos' pailer sends it).
fn number(query: &BTreeMap<String, String>, name: &str) -> Result<Option<i64>, FilesError> {
    let Some(raw) = query.get(name) else {
        return Ok(None);
    };
    let value: i64 = raw
        .trim()
        .parse()
        .map_err(|e| FilesError::Invalid(format!("Failed to parse {name}: Failed to convert '{raw}' to number: {e}.\n")))?;
    if value < -1 {
        return Err(FilesError::Invalid(format!("Negative {name} provided: {value}.\n")));
    }
    Ok(Some(value))
}

fn read_blocking(root: &Path, query: &BTreeMap<String, String>) -> Result<Value, FilesError> {
    let requested = path_param(query)?;
    let offset = number(query, "offset")?.unwrap_or(-1);
    let mut length = number(query, "length")?.filter(|l| *l > -1).map(|l| l as u64);
    // Without an offset (or -1) the answer is the file's size and no data.
    let start = if offset == -1 {
        length = Some(0);
        0
    } else {
        offset as u64
    };
    let real = resolve(root, requested)?;
    if real.is_dir() {
        return Err(FilesError::Invalid("Cannot read a directory.\n".into()));
    }
    let mut file =
        std::fs::File::open(&real).map_err(|e| FilesError::Invalid(format!("Failed to open file at '{}': {e}.\n", real.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let data = if start >= size || length == Some(0) {
        Vec::new()
    } else {
        let wanted = length.unwrap_or(size - start).min(MAX_READ);
        file.seek(SeekFrom::Start(start))
            .map_err(|e| FilesError::Invalid(format!("Failed to seek file at '{}': {e}.\n", real.display())))?;
        let mut data = Vec::new();
        file.take(wanted)
            .read_to_end(&mut data)
            .map_err(|e| FilesError::Invalid(format!("Failed to read file at '{}': {e}.\n", real.display())))?;
        data
    };
    let offset = if offset == -1 { size } else { start };
    Ok(json!({ "data": String::from_utf8_lossy(&data), "offset": offset }))
}

type Params = Query<BTreeMap<String, String>>;

async fn browse(State(agent): State<Arc<Agent>>, Query(query): Params) -> Response {
    let root = agent.args.work_dir.clone();
    let result = tokio::task::spawn_blocking(move || browse_blocking(&root, path_param(&query)?)).await;
    match result {
        Ok(Ok(listing)) => axum::Json(listing).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("browsing failed: {e}\n")).into_response(),
    }
}

async fn read(State(agent): State<Arc<Agent>>, Query(query): Params) -> Response {
    let root = agent.args.work_dir.clone();
    match tokio::task::spawn_blocking(move || read_blocking(&root, &query)).await {
        Ok(Ok(answer)) => axum::Json(answer).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("reading failed: {e}\n")).into_response(),
    }
}

async fn download(State(agent): State<Arc<Agent>>, Query(query): Params) -> Response {
    let root = agent.args.work_dir.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<(String, Vec<u8>), FilesError> {
        let real = resolve(&root, path_param(&query)?)?;
        if real.is_dir() {
            return Err(FilesError::Invalid("Cannot download a directory.\n".into()));
        }
        let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let bytes = std::fs::read(&real).map_err(|e| FilesError::Invalid(format!("Failed to read '{}': {e}.\n", real.display())))?;
        Ok((name, bytes))
    })
    .await;
    match result {
        Ok(Ok((name, bytes))) => (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename={name}")),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("download failed: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> (tempfile::TempDir, PathBuf) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("slaves/S0/frameworks/F/executors/t1/runs/latest");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("stdout"), "hello sandbox\n").unwrap();
        std::fs::write(dir.join("stderr"), "").unwrap();
        (root, dir)
    }

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn read_returns_data_from_an_offset_and_the_size_without_one() {
        let (root, dir) = sandbox();
        let path = dir.join("stdout").display().to_string();
        let all = read_blocking(root.path(), &query(&[("path", &path), ("offset", "0")])).unwrap();
        assert_eq!(all, json!({ "data": "hello sandbox\n", "offset": 0 }));
        let part = read_blocking(root.path(), &query(&[("path", &path), ("offset", "6"), ("length", "7")])).unwrap();
        assert_eq!(part, json!({ "data": "sandbox", "offset": 6 }));
        let size = read_blocking(root.path(), &query(&[("path", &path)])).unwrap();
        assert_eq!(size, json!({ "data": "", "offset": 14 }));
        let past = read_blocking(root.path(), &query(&[("path", &path), ("offset", "100")])).unwrap();
        assert_eq!(past, json!({ "data": "", "offset": 100 }));
    }

    #[test]
    fn bad_parameters_are_400_with_mesos_messages() {
        let (root, dir) = sandbox();
        let path = dir.join("stdout").display().to_string();
        let message = |q: &[(&str, &str)]| match read_blocking(root.path(), &query(q)) {
            Err(FilesError::Invalid(m)) => m,
            other => panic!("expected a 400 for {q:?}, got {other:?}"),
        };
        assert_eq!(message(&[]), "Expecting 'path=value' in query.\n");
        assert_eq!(message(&[("path", &path), ("offset", "-2")]), "Negative offset provided: -2.\n");
        assert_eq!(message(&[("path", &path), ("length", "-5")]), "Negative length provided: -5.\n");
        assert!(message(&[("path", &path), ("offset", "x")]).starts_with("Failed to parse offset"));
        assert_eq!(
            message(&[("path", &dir.display().to_string()), ("offset", "0")]),
            "Cannot read a directory.\n"
        );
    }

    #[test]
    fn paths_outside_the_work_dir_cannot_be_reached() {
        let (root, dir) = sandbox();
        // Not under the work directory at all: not found, as an unattached path in Mesos.
        assert!(matches!(
            read_blocking(root.path(), &query(&[("path", "/etc/passwd"), ("offset", "0")])),
            Err(FilesError::NotFound)
        ));
        // Under it by name, but `..` leads out: refused.
        let escape = format!("{}/../../../../../../../../../../etc/passwd", dir.display());
        assert!(
            matches!(read_blocking(root.path(), &query(&[("path", &escape), ("offset", "0")])), Err(FilesError::Invalid(m)) if m.contains("inaccessible"))
        );
        // A symbolic link in a sandbox that points out: refused too.
        std::os::unix::fs::symlink("/etc", dir.join("out")).unwrap();
        let link = format!("{}/out/passwd", dir.display());
        assert!(matches!(
            read_blocking(root.path(), &query(&[("path", &link), ("offset", "0")])),
            Err(FilesError::Invalid(_))
        ));
        assert!(matches!(browse_blocking(root.path(), &link), Err(FilesError::Invalid(_))));
        // Missing inside: not found.
        let missing = format!("{}/nope", dir.display());
        assert!(matches!(
            read_blocking(root.path(), &query(&[("path", &missing), ("offset", "0")])),
            Err(FilesError::NotFound)
        ));
    }

    #[test]
    fn browse_lists_a_sandbox_sorted_with_file_info() {
        let (root, dir) = sandbox();
        let shown = dir.display().to_string();
        let listing = browse_blocking(root.path(), &shown).unwrap();
        let entries = listing.as_array().unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e["path"].as_str().unwrap()).collect();
        assert_eq!(paths, [format!("{shown}/stderr"), format!("{shown}/stdout")]);
        assert_eq!(entries[1]["size"], 14);
        assert!(entries[1]["mode"].as_str().unwrap().starts_with("-rw"), "{}", entries[1]);
        assert_eq!(mode_string(libc::S_IFDIR | 0o755), "drwxr-xr-x");
    }
}

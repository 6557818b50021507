//! Images built from a local build context (a directory with a Dockerfile), through the
//! engine's classic builder: nothing is pulled, so a context's `FROM` must name a local image,
//! such as the sim's base (`paas-sim-base:<hash>`).
//!
//! The test suites of every crate deploy one such image as a Marathon Docker app: the fixture
//! at `tests/fixtures/app-image/` (a tiny python3 HTTP server answering its task id, with
//! `/health`), built by [`build_test_app`] FROM the base image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::Docker;
use bollard::body_full;
use bollard::query_parameters::BuildImageOptions;
use futures::StreamExt;

use crate::images::{self, Fnv, ImageError, ImageInputs};

/// Repository of the test app image built from `tests/fixtures/app-image/`.
pub const TEST_APP_REPO: &str = "paas-test-app";

/// The fixture's build context: `tests/fixtures/app-image/` of this repository.
pub fn test_app_context() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/app-image")
}

/// Builds the test app image FROM the local base image (which must be present: build it with
/// `paas sim images`) and returns its tag, `paas-test-app:<hash>`. Nothing is rebuilt while
/// the fixture's files and the base are unchanged. Fails when the base is missing or the build
/// fails.
pub async fn build_test_app(docker: &Docker) -> Result<String, ImageError> {
    let inputs = ImageInputs::from_env()?;
    let base = inputs.tags()?.base;
    if !images::is_present(docker, &base).await? {
        return Err(ImageError::CommandFailed {
            command: format!("building {TEST_APP_REPO} FROM {base}"),
            status: "the base image is missing".into(),
            tail: "build it with `paas sim images` (it needs debootstrap)".into(),
        });
    }
    build(docker, &test_app_context(), TEST_APP_REPO, &[("BASE", base.as_str())]).await
}

/// Builds the image of the build context `context` with these build args, tagged
/// `<repo>:<hash of the context's files and the args>`, unless that tag is already present;
/// returns the tag. Fails when the context cannot be read or the engine's build fails (the
/// error carries the builder's last output).
pub async fn build(docker: &Docker, context: &Path, repo: &str, build_args: &[(&str, &str)]) -> Result<String, ImageError> {
    let files = context_files(context)?;
    let mut hash = Fnv::new();
    for (path, content) in &files {
        hash.write(path.as_bytes());
        hash.write(b"\0");
        hash.write(content);
        hash.write(b"\0");
    }
    for (key, value) in build_args {
        hash.write(format!("{key}={value}\0").as_bytes());
    }
    let tag = format!("{repo}:{}", hash.hex());
    if images::is_present(docker, &tag).await? {
        return Ok(tag);
    }
    let entries: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (p.as_str(), c.as_slice(), 0o644)).collect();
    let tar = images::tar_files(&entries);
    let options = BuildImageOptions {
        t: Some(tag.clone()),
        dockerfile: "Dockerfile".into(),
        rm: true,
        forcerm: true,
        buildargs: Some(
            build_args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
        ),
        ..Default::default()
    };
    let mut stream = docker.build_image(options, None, Some(body_full(tar.into())));
    let mut tail: Vec<String> = Vec::new();
    while let Some(step) = stream.next().await {
        let info = step.map_err(|source| ImageError::Docker {
            operation: "build",
            tag: tag.clone(),
            source,
        })?;
        if let Some(line) = info.stream {
            tail.push(line.trim_end().to_owned());
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        if let Some(error) = info.error {
            return Err(ImageError::CommandFailed {
                command: format!("building {tag} from {}", context.display()),
                status: error,
                tail: tail.join("\n"),
            });
        }
    }
    images::remove_older(docker, repo, &tag).await;
    Ok(tag)
}

/// The regular files of a build context, by path relative to it, sorted (so the hash is
/// stable).
fn context_files(context: &Path) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
    let mut files = Vec::new();
    let mut dirs = vec![context.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let read = |source| ImageError::Read {
            path: dir.display().to_string(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(read)? {
            let path = entry.map_err(read)?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let content = std::fs::read(&path).map_err(|source| ImageError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let relative = path.strip_prefix(context).unwrap_or(&path).display().to_string();
                files.push((relative, content));
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_context_has_its_dockerfile_and_app() {
        let files = context_files(&test_app_context()).unwrap();
        let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["Dockerfile", "app.py"]);
    }
}

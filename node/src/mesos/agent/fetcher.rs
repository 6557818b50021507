//! The fetcher: puts a task's `CommandInfo.uris` into its sandbox before the command runs, as
//! the Mesos fetcher does: http(s) and file URIs, archives extracted unless `extract` is false,
//! `executable` files made executable (and never extracted).

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::mesos::v1::CommandUri;

/// Why a URI could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("URI {0:?} has no file name to save it as")]
    NoFileName(String),
    #[error("URI {0:?} has a scheme the fetcher does not support (http, https, file)")]
    Scheme(String),
    #[error("downloading {uri}")]
    Download {
        uri: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("downloading {uri}: server answered {status}")]
    Status { uri: String, status: u16 },
    #[error("copying {uri} into the sandbox")]
    Copy {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("extracting {file}: {message}")]
    Extract { file: PathBuf, message: String },
}

/// Fetches every URI into `sandbox`, in order; stops at the first failure.
pub async fn fetch_all(http: &reqwest::Client, uris: &[CommandUri], sandbox: &Path) -> Result<(), FetchError> {
    for uri in uris {
        fetch(http, uri, sandbox).await?;
    }
    Ok(())
}

fn file_name(uri: &CommandUri) -> Result<String, FetchError> {
    if let Some(name) = uri.output_file.as_ref().filter(|n| !n.is_empty()) {
        return Ok(name.clone());
    }
    let without_query = uri.value.split(['?', '#']).next().unwrap_or_default();
    without_query
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| FetchError::NoFileName(uri.value.clone()))
}

fn is_archive(name: &str) -> bool {
    [".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

async fn fetch(http: &reqwest::Client, uri: &CommandUri, sandbox: &Path) -> Result<(), FetchError> {
    let name = file_name(uri)?;
    let target = sandbox.join(&name);
    let value = uri.value.as_str();
    if value.starts_with("http://") || value.starts_with("https://") {
        let download = |source| FetchError::Download {
            uri: value.to_owned(),
            source,
        };
        let response = http.get(value).send().await.map_err(download)?;
        if !response.status().is_success() {
            return Err(FetchError::Status {
                uri: value.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let bytes = response.bytes().await.map_err(download)?;
        tokio::fs::write(&target, &bytes).await.map_err(|source| FetchError::Copy {
            uri: value.to_owned(),
            source,
        })?;
    } else if let Some(path) = value.strip_prefix("file://").or_else(|| value.starts_with('/').then_some(value)) {
        tokio::fs::copy(path, &target).await.map_err(|source| FetchError::Copy {
            uri: value.to_owned(),
            source,
        })?;
    } else {
        return Err(FetchError::Scheme(value.to_owned()));
    }

    if uri.executable == Some(true) {
        let permissions = std::fs::Permissions::from_mode(0o755);
        tokio::fs::set_permissions(&target, permissions)
            .await
            .map_err(|source| FetchError::Copy {
                uri: value.to_owned(),
                source,
            })?;
    } else if uri.extract != Some(false) && is_archive(&name) {
        extract(&target, sandbox).await?;
    }
    Ok(())
}

async fn extract(file: &Path, sandbox: &Path) -> Result<(), FetchError> {
    let name = file.to_string_lossy();
    let mut command = if name.ends_with(".zip") {
        let mut command = tokio::process::Command::new("unzip");
        command.arg("-o").arg("-q").arg(file).arg("-d").arg(sandbox);
        command
    } else {
        // GNU tar recognises the compression itself when reading.
        let mut command = tokio::process::Command::new("tar");
        command.arg("-xf").arg(file).arg("-C").arg(sandbox);
        command
    };
    let output = command.output().await.map_err(|e| FetchError::Extract {
        file: file.to_owned(),
        message: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(FetchError::Extract {
            file: file.to_owned(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_files_as_mesos_does() {
        let uri = |value: &str| CommandUri {
            value: value.into(),
            ..Default::default()
        };
        assert_eq!(file_name(&uri("http://h/a/app.tgz?x=1")).unwrap(), "app.tgz");
        let mut named = uri("http://h/a/");
        assert!(file_name(&named).is_err());
        named.output_file = Some("b.bin".into());
        assert_eq!(file_name(&named).unwrap(), "b.bin");
        assert!(is_archive("x.tar.gz") && is_archive("x.zip") && !is_archive("x.gz.txt"));
    }
}

//! The sim's images, built locally: no registry is needed.
//!
//! Two layers, each tagged by a hash of its inputs so a rebuild happens only when an input
//! changes:
//! - the **base** (`paas-sim-base:<hash>`): a Debian bookworm root filesystem made by
//!   `debootstrap` with every package the nodes need (ZooKeeper and its JRE, nginx, HAProxy,
//!   iproute2/iptables, python3, curl, procps), imported into Docker;
//! - the **node** image (`paas-sim:<hash>`): the base plus the `paas-node` binary, whose
//!   `supervise` program is the container's init.
//!
//! Every role uses the node image unless the spec names another (`[sim.images]`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use bollard::Docker;
use bollard::body_full;
use bollard::models::ContainerConfig;
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, CreateImageOptions, RemoveContainerOptions, UploadToContainerOptions,
};
use futures::StreamExt;
use tokio::io::AsyncBufReadExt;

/// Debian packages of the base image. Changing this list changes the base tag.
pub const BASE_PACKAGES: &[&str] = &[
    "zookeeper",
    "default-jre-headless",
    "nginx-light",
    "haproxy",
    "iproute2",
    "iptables",
    "python3",
    "curl",
    "procps",
    "ca-certificates",
];

/// The Debian release the base is made from.
pub const SUITE: &str = "bookworm";

/// The mirror `debootstrap` downloads from unless `PAAS_DEBIAN_MIRROR` says otherwise.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Repository of the base image.
pub const BASE_REPO: &str = "paas-sim-base";
/// Repository of the node image every role runs.
pub const NODE_REPO: &str = "paas-sim";

/// Where the node binary is installed in the image, and the entry point of every container.
pub const NODE_BINARY_IN_IMAGE: &str = "/usr/local/bin/paas-node";

/// Bumped when the way the base is made changes (post-processing below), to force a rebuild.
const BASE_RECIPE_VERSION: &str = "1";

/// What the images are made from.
#[derive(Debug, Clone)]
pub struct ImageInputs {
    /// The `paas-node` executable to put in the node image.
    pub node_binary: PathBuf,
    /// The Debian mirror for `debootstrap`.
    pub mirror: String,
}

/// The tags of the images for one set of inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimImages {
    pub base: String,
    pub node: String,
}

/// One step of an image build, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageProgress {
    /// The image is already there: nothing to do.
    Present { tag: String },
    /// Building starts.
    Building { tag: String },
    /// A line of the build's output (e.g. `debootstrap`'s `I: Retrieving ...`).
    Output { tag: String, line: String },
    /// The image was built.
    Built { tag: String, seconds: f64 },
}

/// Why images could not be listed or built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "cannot find the paas-node binary (looked at {looked_at}); build it with `cargo build --workspace --bins --tests` or set PAAS_NODE_BINARY"
    )]
    NodeBinaryMissing { looked_at: String },
    #[error("reading {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{tool}` is needed to build the base image but was not found on PATH; install it (Debian: apt-get install {package})")]
    ToolMissing { tool: &'static str, package: &'static str },
    #[error("running {command}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{command} failed ({status}); its last output:\n{tail}")]
    CommandFailed { command: String, status: String, tail: String },
    #[error("Docker {operation} for image {tag}")]
    Docker {
        operation: &'static str,
        tag: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl ImageInputs {
    /// Inputs from the environment: `PAAS_NODE_BINARY`, else `paas-node` next to the running
    /// executable (also one directory up, where test binaries live in `target/debug/deps`);
    /// `PAAS_DEBIAN_MIRROR`, else [`DEFAULT_MIRROR`].
    pub fn from_env() -> Result<ImageInputs, ImageError> {
        let mirror = std::env::var("PAAS_DEBIAN_MIRROR").unwrap_or_else(|_| DEFAULT_MIRROR.to_string());
        if let Ok(path) = std::env::var("PAAS_NODE_BINARY") {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(ImageError::NodeBinaryMissing {
                    looked_at: path.display().to_string(),
                });
            }
            return Ok(ImageInputs { node_binary: path, mirror });
        }
        let exe = std::env::current_exe().map_err(|source| ImageError::Read {
            path: "the running executable's path".into(),
            source,
        })?;
        let mut looked_at = Vec::new();
        let mut dir = exe.parent();
        for _ in 0..2 {
            let Some(d) = dir else { break };
            let candidate = d.join("paas-node");
            if candidate.is_file() {
                return Ok(ImageInputs {
                    node_binary: candidate,
                    mirror,
                });
            }
            looked_at.push(candidate.display().to_string());
            dir = d.parent();
        }
        Err(ImageError::NodeBinaryMissing {
            looked_at: looked_at.join(", "),
        })
    }

    /// The tags these inputs give; reads the node binary to hash it.
    pub fn tags(&self) -> Result<SimImages, ImageError> {
        let base = format!("{BASE_REPO}:{}", base_hash());
        let binary = std::fs::read(&self.node_binary).map_err(|source| ImageError::Read {
            path: self.node_binary.display().to_string(),
            source,
        })?;
        let mut hash = Fnv::new();
        hash.write(base.as_bytes());
        hash.write(&binary);
        Ok(SimImages {
            node: format!("{NODE_REPO}:{}", hash.hex()),
            base,
        })
    }
}

fn base_hash() -> String {
    let mut hash = Fnv::new();
    hash.write(BASE_RECIPE_VERSION.as_bytes());
    hash.write(SUITE.as_bytes());
    for package in BASE_PACKAGES {
        hash.write(b"\0");
        hash.write(package.as_bytes());
    }
    hash.hex()
}

/// Whether an image is present in the engine.
pub async fn is_present(docker: &Docker, tag: &str) -> Result<bool, ImageError> {
    match docker.inspect_image(tag).await {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => Ok(false),
        Err(source) => Err(ImageError::Docker {
            operation: "inspect",
            tag: tag.into(),
            source,
        }),
    }
}

/// Makes sure both images exist, building what is missing, and returns their tags.
pub async fn ensure(docker: &Docker, inputs: &ImageInputs, progress: &(dyn Fn(ImageProgress) + Sync)) -> Result<SimImages, ImageError> {
    let tags = inputs.tags()?;
    if is_present(docker, &tags.base).await? {
        progress(ImageProgress::Present { tag: tags.base.clone() });
    } else {
        let started = Instant::now();
        progress(ImageProgress::Building { tag: tags.base.clone() });
        build_base(docker, inputs, &tags.base, progress).await?;
        progress(ImageProgress::Built {
            tag: tags.base.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    if is_present(docker, &tags.node).await? {
        progress(ImageProgress::Present { tag: tags.node.clone() });
    } else {
        let started = Instant::now();
        progress(ImageProgress::Building { tag: tags.node.clone() });
        build_node(docker, inputs, &tags).await?;
        progress(ImageProgress::Built {
            tag: tags.node.clone(),
            seconds: started.elapsed().as_secs_f64(),
        });
        remove_older(docker, NODE_REPO, &tags.node).await;
    }
    Ok(tags)
}

/// Best effort: earlier images of `repo` pile up (node images, one per rebuild of `paas-node`;
/// local images, one per change of their context); those more than an hour old that no
/// container uses are removed (Docker refuses the ones in use; the hour spares an image another
/// process has just chosen or built but not yet started).
pub(crate) async fn remove_older(docker: &Docker, repo: &str, current: &str) {
    let filters = [("reference".to_string(), vec![format!("{repo}:*")])].into();
    let Ok(images) = docker
        .list_images(Some(bollard::query_parameters::ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let old = images.into_iter().filter(|i| i.created < now - 3600);
    for tag in old.flat_map(|i| i.repo_tags).filter(|t| t != current) {
        let _ = docker
            .remove_image(&tag, None::<bollard::query_parameters::RemoveImageOptions>, None)
            .await;
    }
}

fn find_tool(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(tool).is_file())
}

/// `debootstrap` into a scratch directory, trims it, and imports it as `tag`.
async fn build_base(docker: &Docker, inputs: &ImageInputs, tag: &str, progress: &(dyn Fn(ImageProgress) + Sync)) -> Result<(), ImageError> {
    if !find_tool("debootstrap") {
        return Err(ImageError::ToolMissing {
            tool: "debootstrap",
            package: "debootstrap",
        });
    }
    if !find_tool("tar") {
        return Err(ImageError::ToolMissing {
            tool: "tar",
            package: "tar",
        });
    }
    let scratch = std::env::temp_dir().join(format!("paas-rootfs-{}", std::process::id()));
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|source| ImageError::Read {
        path: cache.display().to_string(),
        source,
    })?;
    let result = async {
        let mut debootstrap = tokio::process::Command::new("debootstrap");
        debootstrap
            .arg("--variant=minbase")
            .arg(format!("--include={}", BASE_PACKAGES.join(",")))
            .arg(format!("--cache-dir={}", cache.display()))
            .arg(SUITE)
            .arg(&scratch)
            .arg(&inputs.mirror);
        run_logged(debootstrap, "debootstrap", tag, progress).await?;
        trim_rootfs(&scratch);
        import_rootfs(docker, &scratch, tag).await
    }
    .await;
    // The scratch tree is hundreds of MB: never leave it behind, whatever happened.
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// debootstrap's download cache, reused by later builds (e.g. after a package list change).
fn cache_dir() -> PathBuf {
    match std::env::var_os("XDG_CACHE_HOME").or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").into())) {
        Some(dir) => Path::new(&dir).join("paas").join("debootstrap"),
        None => std::env::temp_dir().join("paas-debootstrap-cache"),
    }
}

/// Removes what a container never needs: downloaded packages and package lists.
fn trim_rootfs(root: &Path) {
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"] {
        let path = root.join(dir);
        if let Ok(entries) = std::fs::read_dir(&path) {
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() && !p.is_symlink() {
                    let _ = std::fs::remove_dir_all(&p);
                } else if p.file_name().is_some_and(|n| n != "lock" && n != "partial") {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

/// Runs a command, forwarding its output lines as progress, failing with its last lines.
async fn run_logged(
    mut command: tokio::process::Command,
    name: &str,
    tag: &str,
    progress: &(dyn Fn(ImageProgress) + Sync),
) -> Result<(), ImageError> {
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| ImageError::Spawn {
        command: name.into(),
        source,
    })?;
    let stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let stderr = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut lines = futures::stream::select(tokio_stream_lines(stdout), tokio_stream_lines(stderr));
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    while let Some(line) = lines.next().await {
        if tail.len() == 20 {
            tail.pop_front();
        }
        tail.push_back(line.clone());
        progress(ImageProgress::Output { tag: tag.into(), line });
    }
    let status = child.wait().await.map_err(|source| ImageError::Spawn {
        command: name.into(),
        source,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ImageError::CommandFailed {
            command: name.into(),
            status: status.to_string(),
            tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
        })
    }
}

fn tokio_stream_lines<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
    lines: tokio::io::Lines<R>,
) -> futures::stream::BoxStream<'static, String> {
    futures::stream::unfold(lines, |mut lines| async move {
        match lines.next_line().await {
            Ok(Some(line)) => Some((line, lines)),
            _ => None,
        }
    })
    .boxed()
}

/// `tar` the root filesystem (numeric owners, as the files are) and stream it to
/// `POST /images/create?fromSrc=-`, the API of `docker import`.
async fn import_rootfs(docker: &Docker, root: &Path, tag: &str) -> Result<(), ImageError> {
    let mut tar = tokio::process::Command::new("tar");
    tar.arg("-C")
        .arg(root)
        .args(["--numeric-owner", "-cf", "-", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = tar.spawn().map_err(|source| ImageError::Spawn {
        command: "tar".into(),
        source,
    })?;
    let stdout = child.stdout.take().expect("piped");
    let body = tokio_util::io::ReaderStream::new(stdout).filter_map(|chunk| async move { chunk.ok() });
    let (repo, tag_part) = tag.split_once(':').expect("tags are repo:hash");
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.into()),
        tag: Some(tag_part.into()),
        message: Some(format!("debootstrap --variant=minbase {SUITE}")),
        ..Default::default()
    };
    let mut stream = docker.create_image(Some(options), Some(bollard::body_stream(body)), None);
    while let Some(item) = stream.next().await {
        item.map_err(|source| ImageError::Docker {
            operation: "import",
            tag: tag.into(),
            source,
        })?;
    }
    let status = child.wait().await.map_err(|source| ImageError::Spawn {
        command: "tar".into(),
        source,
    })?;
    if !status.success() {
        return Err(ImageError::CommandFailed {
            command: format!("tar of {}", root.display()),
            status: status.to_string(),
            tail: String::new(),
        });
    }
    Ok(())
}

/// Adds the node binary to the base in one layer: a stopped container from the base gets the
/// file, and is committed with the entry point set.
async fn build_node(docker: &Docker, inputs: &ImageInputs, tags: &SimImages) -> Result<(), ImageError> {
    let docker_err = |operation| {
        let tag = tags.node.clone();
        move |source| ImageError::Docker { operation, tag, source }
    };
    let binary = std::fs::read(&inputs.node_binary).map_err(|source| ImageError::Read {
        path: inputs.node_binary.display().to_string(),
        source,
    })?;
    let archive = tar_one_file("usr/local/bin/paas-node", &binary, 0o755);
    let name = format!("paas-image-build-{}", std::process::id());
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.clone()),
                ..Default::default()
            }),
            bollard::models::ContainerCreateBody {
                image: Some(tags.base.clone()),
                cmd: Some(vec!["/bin/true".into()]),
                ..Default::default()
            },
        )
        .await
        .map_err(docker_err("create build container"))?;
    let result = async {
        docker
            .upload_to_container(
                &created.id,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                body_full(archive.into()),
            )
            .await
            .map_err(docker_err("upload paas-node"))?;
        let (repo, tag_part) = tags.node.split_once(':').expect("tags are repo:hash");
        docker
            .commit_container(
                CommitContainerOptions {
                    container: Some(created.id.clone()),
                    repo: Some(repo.into()),
                    tag: Some(tag_part.into()),
                    comment: Some(format!("{} on {}", NODE_BINARY_IN_IMAGE, tags.base)),
                    ..Default::default()
                },
                ContainerConfig {
                    entrypoint: Some(vec![NODE_BINARY_IN_IMAGE.into(), "supervise".into()]),
                    cmd: Some(vec![]),
                    env: Some(vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()]),
                    labels: Some([("paas.image".to_string(), "sim".to_string())].into()),
                    ..Default::default()
                },
            )
            .await
            .map_err(docker_err("commit"))
    }
    .await;
    let _ = docker
        .remove_container(
            &created.id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    result.map(|_| ())
}

/// A tar archive holding one regular file (root-owned), for `PUT /containers/{id}/archive`.
pub fn tar_one_file(path: &str, content: &[u8], mode: u32) -> Vec<u8> {
    tar_files(&[(path, content, mode)])
}

/// A tar archive of regular files (root-owned); parent directories are created by Docker.
pub fn tar_files(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path.trim_start_matches('/'), *content)
            .expect("writing a tar archive to memory cannot fail");
    }
    builder.into_inner().expect("writing a tar archive to memory cannot fail")
}

/// FNV-1a, 64 bits: stable across versions, enough to tell inputs apart; the sim's image tags
/// and those of local images (`local_image`) use it.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_tag_changes_with_the_package_list_only() {
        assert_eq!(base_hash(), base_hash());
        assert_eq!(base_hash().len(), 16);
    }

    #[test]
    fn node_tag_follows_the_binary() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("paas-node");
        std::fs::write(&binary, b"one").unwrap();
        let inputs = ImageInputs {
            node_binary: binary.clone(),
            mirror: DEFAULT_MIRROR.into(),
        };
        let first = inputs.tags().unwrap();
        assert_eq!(first, inputs.tags().unwrap());
        std::fs::write(&binary, b"two").unwrap();
        let second = inputs.tags().unwrap();
        assert_eq!(first.base, second.base);
        assert_ne!(first.node, second.node);
    }

    #[test]
    fn tar_holds_the_file() {
        let archive = tar_one_file("/etc/paas/node.json", b"{}", 0o644);
        let mut reader = tar::Archive::new(archive.as_slice());
        let entries: Vec<String> = reader
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(entries, ["etc/paas/node.json"]);
    }
}

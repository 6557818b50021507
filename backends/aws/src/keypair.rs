//! The cluster's SSH key pair: an ed25519 key generated locally, its public half imported.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_sdk_ec2::types::ResourceType;
use paas_core::resource::{Resource, ResourceSpec};
use paas_core::{BackendError, Observed};
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::AwsBackend;
use crate::error::aws;
use crate::network::{observed, wrong_spec};
use crate::tags::{self, Marks};

/// The private key's file name in the cluster's folder.
pub const PRIVATE_KEY_FILE: &str = "id_ed25519";

/// Where the private key of a cluster whose folder is `dir` lives.
pub fn private_key_path(dir: &Path) -> PathBuf {
    dir.join(PRIVATE_KEY_FILE)
}

/// Reads the key in `dir`, or generates one and writes it there readable by the owner only.
/// Returns the public key in OpenSSH form. Fails when the file cannot be read or written.
pub fn load_or_generate(dir: &Path) -> Result<String, std::io::Error> {
    let path = private_key_path(dir);
    let key = match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(text).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).map_err(std::io::Error::other)?;
            let text = key.to_openssh(LineEnding::LF).map_err(std::io::Error::other)?;
            std::fs::create_dir_all(dir)?;
            // Written to a temporary name created 0600, then renamed: the key is never readable
            // by others, and never half-written under its real name.
            let tmp = dir.join(format!("{PRIVATE_KEY_FILE}.tmp"));
            let mut file = open_private(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            key
        }
        Err(e) => return Err(e),
    };
    key.public_key().to_openssh().map_err(std::io::Error::other)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

impl AwsBackend {
    pub(crate) async fn list_key_pairs(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let out = self
            .clients
            .ec2
            .describe_key_pairs()
            .filters(tags::cluster_filter(cluster))
            .send()
            .await
            .map_err(|e| aws("describe key pairs", cluster, e))?;
        Ok(out
            .key_pairs()
            .iter()
            .filter_map(|k| {
                let id = k.key_pair_id().or(k.key_name()).unwrap_or_default();
                let mut o = tags::observed(cluster, tags::ec2_pairs(k.tags()), id, Default::default())?;
                o.attrs.insert("name".into(), k.key_name().unwrap_or_default().into());
                Some(o)
            })
            .collect())
    }

    pub(crate) async fn create_key_pair(&self, cluster: &str, resource: &Resource) -> Result<Observed, BackendError> {
        let ResourceSpec::KeyPair { name } = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let public = load_or_generate(&self.key_dir).map_err(|e| BackendError::Failed {
            op: "generate ssh key",
            id: resource.id.to_string(),
            message: format!("in {}", self.key_dir.display()),
            source: Some(Box::new(e)),
        })?;
        let marks = Marks::new(cluster, resource, "key-pair", None, true);
        let out = self
            .clients
            .ec2
            .import_key_pair()
            .key_name(name)
            .public_key_material(aws_smithy_types::Blob::new(public.into_bytes()))
            .tag_specifications(marks.ec2_spec(ResourceType::KeyPair))
            .send()
            .await
            .map_err(|e| aws("import key pair", &resource.id, e))?;
        let id = out.key_pair_id().or(out.key_name()).unwrap_or(name).to_string();
        let mut o = observed(resource, id, Default::default());
        o.attrs.insert("name".into(), name.clone());
        Ok(o)
    }

    /// Deletes the imported key; the local private key stays, so a re-created cluster reuses it.
    pub(crate) async fn delete_key_pair(&self, current: &Observed) -> Result<(), BackendError> {
        // By name: every EC2 implementation accepts it, not all accept the key pair id.
        let mut call = self.clients.ec2.delete_key_pair();
        call = match current.attrs.get("name") {
            Some(name) => call.key_name(name),
            None if current.provider_id.starts_with("key-") => call.key_pair_id(&current.provider_id),
            None => call.key_name(&current.provider_id),
        };
        call.send().await.map(|_| ()).map_err(|e| aws("delete key pair", &current.id, e))
    }
}

//! The node configuration the supervisor reads: the JSON form of `paas_core`'s `NodeConfig`.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

/// Files to write and programs to run.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NodeConfig {
    #[serde(default)]
    pub files: Vec<NodeFile>,
    #[serde(default)]
    pub programs: Vec<NodeProgram>,
}

/// A file of the node.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeFile {
    pub path: String,
    pub content: String,
}

/// A program of the node, by its upstream name, with its flags.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeProgram {
    pub name: String,
    #[serde(default)]
    pub args: Vec<String>,
}

impl NodeConfig {
    /// Reads and parses the JSON file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the node configuration {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing the node configuration {}", path.display()))
    }

    /// Writes every file, creating parent directories. A write goes to a temporary file first
    /// and is renamed into place, so a program never reads half a file.
    pub fn write_files(&self) -> anyhow::Result<()> {
        for file in &self.files {
            let path = Path::new(&file.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            }
            let temporary = path.with_extension("paas-tmp");
            std::fs::write(&temporary, &file.content).with_context(|| format!("writing {}", temporary.display()))?;
            std::fs::rename(&temporary, path).with_context(|| format!("moving {} into place", path.display()))?;
        }
        Ok(())
    }
}

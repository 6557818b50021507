//! The node configuration the supervisor reads: `paas_core`'s [`NodeConfig`] as JSON, so the
//! file core renders and the file a node reads cannot drift apart.

use std::path::Path;

use anyhow::Context;
pub use paas_core::render::{ConfigFile as NodeFile, NodeConfig, Program as NodeProgram};

/// Reads and parses the JSON node configuration at `path`.
pub fn read(path: &Path) -> anyhow::Result<NodeConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the node configuration {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the node configuration {}", path.display()))
}

/// Writes every file of `config`, creating parent directories. A write goes to a temporary
/// file first and is renamed into place, so a program never reads half a file.
pub fn write_files(config: &NodeConfig) -> anyhow::Result<()> {
    for file in &config.files {
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

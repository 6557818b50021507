//! The node configuration the supervisor reads: `paas_core`'s [`NodeConfig`] as JSON, so the
//! file core renders and the file a node reads cannot drift apart.

use std::path::{Path, PathBuf};

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

/// Where a new configuration for `config` waits to be installed: `node.json` has
/// `node.next.json`. It is written from outside the node (the sim's Docker backend copies it into
/// the container), never over a file the node itself replaced, which some overlay filesystems
/// get wrong, so it is only ever a fresh file.
pub fn staged_path(config: &Path) -> PathBuf {
    config.with_extension("next.json")
}

/// Installs the configuration staged beside `config`, if there is one: writes its files, each
/// atomically, then moves it over `config`. An install cut short leaves it staged, and the next
/// install does it all again. Returns whether one was staged.
pub fn install_staged(config: &Path) -> anyhow::Result<bool> {
    let staged = staged_path(config);
    if !staged.exists() {
        return Ok(false);
    }
    let next = read(&staged)?;
    write_files(&next)?;
    std::fs::rename(&staged, config).with_context(|| format!("moving {} to {}", staged.display(), config.display()))?;
    Ok(true)
}

//! What every command starts from: the checked spec and where state lives.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use paas_core::spec::{DEFAULT_SPEC_FILE, SpecErrors, ValidationContext};
use paas_core::{ClusterSpec, Target, Topology};

use crate::cli::{GlobalArgs, OutputFormat};

/// Marks an error caused by the user's input (exit code 2: nothing was changed).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Whether an error (anywhere in its chain) is the user's input being wrong.
pub fn is_bad_input(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.is::<BadInput>() || e.is::<SpecErrors>() || e.is::<paas_core::spec::SpecError>())
}

/// The recorded spec of the built-in default cluster on one target.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `<state dir>/<cluster>/<target>.spec.toml`.
    pub path: PathBuf,
    /// Whether the spec in use was read from it (else it is the built-in default).
    pub in_use: bool,
}

/// Replaces `path` with `text` through a temporary file and a rename, so an interrupted
/// write leaves the old file whole.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.paas-tmp"));
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        // Keep the file's permissions: it is the user's file.
        let _ = std::fs::set_permissions(&temporary, metadata.permissions());
    }
    std::fs::rename(&temporary, path).with_context(|| format!("replacing {}", path.display()))
}

/// A loaded and checked spec.
#[derive(Debug)]
pub struct Context {
    pub spec: ClusterSpec,
    /// Where the spec came from, or `None` for the built-in default.
    pub spec_path: Option<PathBuf>,
    /// With no spec file: where the built-in default cluster's spec is recorded once a
    /// command changed it (`sim scale`), and whether it was read from there.
    pub recorded: Option<Recorded>,
    pub output: OutputFormat,
    pub state_dir: PathBuf,
}

impl Context {
    /// Loads the spec named by `--spec`, else `./paas.toml` if present, else the built-in
    /// default, and validates it. Fails with a bad-input error naming every problem.
    pub fn load(global: &GlobalArgs) -> anyhow::Result<Context> {
        Context::load_spec(global, None)
    }

    /// Like [`Context::load`] for a command acting on `target`: without a spec file, the
    /// built-in default cluster's recorded spec (what `scale` made of it) is used when there
    /// is one, so status, plan and the next up agree with what was scaled.
    pub fn load_for(global: &GlobalArgs, target: Target) -> anyhow::Result<Context> {
        Context::load_spec(global, Some(target))
    }

    fn load_spec(global: &GlobalArgs, target: Option<Target>) -> anyhow::Result<Context> {
        let path = match &global.spec {
            Some(path) => Some(path.clone()),
            None => Path::new(DEFAULT_SPEC_FILE).exists().then(|| PathBuf::from(DEFAULT_SPEC_FILE)),
        };
        let mut recorded = None;
        let spec = match &path {
            Some(path) => ClusterSpec::load(path)?,
            None => {
                let default = ClusterSpec::default();
                match target {
                    Some(target) => {
                        let path = global.state_dir.join(&default.name).join(format!("{}.spec.toml", target.as_str()));
                        let spec = if path.exists() { ClusterSpec::load(&path)? } else { default };
                        recorded = Some(Recorded {
                            in_use: path.exists(),
                            path,
                        });
                        spec
                    }
                    None => default,
                }
            }
        };
        let ctx = Context {
            spec,
            spec_path: path,
            recorded,
            output: global.output,
            state_dir: global.state_dir.clone(),
        };
        ctx.spec.validate(ValidationContext { base_dir: &ctx.base_dir() })?;
        Ok(ctx)
    }

    /// Makes a new node count the spec's own, so that status, plan and the next up agree
    /// with it: rewritten into the spec file (comments and layout kept), or, for the built-in
    /// default cluster, into its recorded spec. Returns where it was written.
    pub fn persist_node_count(&self, role: &str, count: u32) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.spec_path {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let edited = ClusterSpec::with_node_count(&text, path, role, count)?;
            write_atomically(path, &edited)?;
            return Ok(path.clone());
        }
        let recorded = self
            .recorded
            .as_ref()
            .context("no place to record the spec of the built-in default cluster")?;
        let mut spec = self.spec.clone();
        match role {
            "masters" => spec.nodes.masters = count,
            "slaves" => spec.nodes.slaves = count,
            "lbs" => spec.nodes.lbs = count,
            other => anyhow::bail!("`{other}` is not a role with a count"),
        }
        let text = format!(
            "# The spec of cluster {} as `paas scale` left it; the built-in default otherwise.\n\
             # Removed by `paas down`; write a paas.toml (`paas init`) to take over.\n{}",
            spec.name,
            toml::to_string(&spec).context("rendering the recorded spec")?
        );
        if let Some(dir) = recorded.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        write_atomically(&recorded.path, &text)?;
        Ok(recorded.path.clone())
    }

    /// After the cluster is gone: the built-in default cluster starts from the default again.
    pub fn forget_recorded_spec(&self) -> anyhow::Result<()> {
        match &self.recorded {
            Some(recorded) if recorded.in_use => {
                std::fs::remove_file(&recorded.path).with_context(|| format!("removing {}", recorded.path.display()))
            }
            _ => Ok(()),
        }
    }

    /// The folder app paths are relative to: the spec file's, else the working directory.
    pub fn base_dir(&self) -> PathBuf {
        match self.spec_path.as_deref().and_then(Path::parent) {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The spec with a command-line override (`--azs 4`, `scale lbs 0`) applied, checked by
    /// the same rules as the file: a flag never brings in what the file could not. Fails with
    /// a bad-input error naming the key and the flag; the context's spec is left as it was.
    pub fn overridden(&self, flag: &str, change: impl FnOnce(&mut ClusterSpec)) -> anyhow::Result<ClusterSpec> {
        let mut spec = self.spec.clone();
        change(&mut spec);
        spec.validate(ValidationContext {
            base_dir: &self.base_dir(),
        })
        .with_context(|| format!("{} with {flag}", self.spec_origin()))?;
        Ok(spec)
    }

    /// `paas.toml` or `built-in default spec`, for messages.
    pub fn spec_origin(&self) -> String {
        match (&self.spec_path, &self.recorded) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(recorded)) if recorded.in_use => format!("the recorded spec {}", recorded.path.display()),
            (None, _) => "the built-in default spec".into(),
        }
    }

    /// Places the spec over zones, printing placement warnings to stderr.
    pub fn place(&self, zones: &[String]) -> anyhow::Result<Topology> {
        let topology = Topology::place(&self.spec, zones).map_err(|e| BadInput(e.to_string()))?;
        for warning in &topology.warnings {
            eprintln!("warning: {warning}");
        }
        Ok(topology)
    }

    /// Zone names to plan with when the backend is not asked: the sim's own, or the region's
    /// conventional `<region>a, b, c...` for AWS.
    pub fn offline_zones(&self, target: Target) -> Vec<String> {
        match target {
            Target::Sim => Topology::sim_zones(self.spec.azs),
            Target::Aws => {
                let region = self.spec.aws.region.as_deref().unwrap_or("us-east-1");
                (0..self.spec.azs)
                    .map(|i| format!("{region}{}", (b'a' + i as u8) as char))
                    .collect()
            }
        }
    }

    /// Writes `value` as pretty JSON on stdout.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value).context("rendering JSON output")?;
        println!("{text}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn global(state_dir: &Path, spec: Option<PathBuf>) -> GlobalArgs {
        GlobalArgs {
            spec,
            output: OutputFormat::Text,
            state_dir: state_dir.to_path_buf(),
            verbose: 0,
            quiet: true,
        }
    }

    #[test]
    fn the_default_clusters_scaled_count_is_recorded_per_target_until_down() {
        let dir = tempfile::tempdir().unwrap();
        let global = global(dir.path(), None);
        let ctx = Context::load_for(&global, Target::Sim).unwrap();
        assert_eq!(ctx.spec_origin(), "the built-in default spec");
        let written = ctx.persist_node_count("slaves", 8).unwrap();
        assert_eq!(written, dir.path().join("paas/sim.spec.toml"));

        let scaled = Context::load_for(&global, Target::Sim).unwrap();
        assert_eq!(scaled.spec.nodes.slaves, 8);
        assert_eq!(
            scaled.spec,
            ClusterSpec {
                nodes: paas_core::spec::NodeCounts {
                    slaves: 8,
                    ..Default::default()
                },
                ..Default::default()
            }
        );
        assert!(scaled.spec_origin().contains("sim.spec.toml"), "{}", scaled.spec_origin());
        // Another target's cluster of the same name keeps the built-in count.
        assert_eq!(Context::load_for(&global, Target::Aws).unwrap().spec.nodes.slaves, 5);

        // Scaling again rewrites the record; down forgets it.
        scaled.persist_node_count("lbs", 3).unwrap();
        let again = Context::load_for(&global, Target::Sim).unwrap();
        assert_eq!((again.spec.nodes.slaves, again.spec.nodes.lbs), (8, 3));
        again.forget_recorded_spec().unwrap();
        assert_eq!(Context::load_for(&global, Target::Sim).unwrap().spec, ClusterSpec::default());
    }

    #[test]
    fn a_spec_file_is_rewritten_in_place_and_not_recorded_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, "# ours\n[nodes]\nlbs = 2 # two\n").unwrap();
        let global = global(&dir.path().join("state"), Some(path.clone()));
        let ctx = Context::load_for(&global, Target::Sim).unwrap();
        assert_eq!(ctx.persist_node_count("lbs", 4).unwrap(), path);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# ours\n[nodes]\nlbs = 4 # two\n");
        assert!(!dir.path().join("state").exists());
    }
}

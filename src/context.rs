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

/// A loaded and checked spec.
#[derive(Debug)]
pub struct Context {
    pub spec: ClusterSpec,
    /// Where the spec came from, or `None` for the built-in default.
    pub spec_path: Option<PathBuf>,
    pub output: OutputFormat,
    pub state_dir: PathBuf,
}

impl Context {
    /// Loads the spec named by `--spec`, else `./paas.toml` if present, else the built-in
    /// default, and validates it. Fails with a bad-input error naming every problem.
    pub fn load(global: &GlobalArgs) -> anyhow::Result<Context> {
        let path = match &global.spec {
            Some(path) => Some(path.clone()),
            None => Path::new(DEFAULT_SPEC_FILE).exists().then(|| PathBuf::from(DEFAULT_SPEC_FILE)),
        };
        let spec = match &path {
            Some(path) => ClusterSpec::load(path)?,
            None => ClusterSpec::default(),
        };
        let ctx = Context {
            spec,
            spec_path: path,
            output: global.output,
            state_dir: global.state_dir.clone(),
        };
        ctx.spec.validate(ValidationContext { base_dir: &ctx.base_dir() })?;
        Ok(ctx)
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
        match &self.spec_path {
            Some(path) => path.display().to_string(),
            None => "the built-in default spec".into(),
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

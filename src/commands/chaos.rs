//! `paas chaos …`: inject a fault into the sim cluster while a probe sends app traffic through
//! the external load balancer; measure availability, latency and recovery; heal; write a
//! journal (JSON) and a report (SVG). Exit 1 when the steady-state hypothesis fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use paas_core::Role;
use paas_docker::chaos::SimPlatform;
use paas_docker::sim::Sim;
use paas_scenarios::active::{self, ActiveStore};
use paas_scenarios::hypothesis::Hypothesis;
use paas_scenarios::journal::Journal;
use paas_scenarios::scenario::{self, Scenario, Step};
use paas_scenarios::session::SessionError;
use paas_scenarios::{Fault, Platform, Selector, Session, SessionConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::context::{BadInput, Context};

/// Flags of `paas chaos`.
#[derive(Debug, Args)]
pub struct ChaosArgs {
    #[command(subcommand)]
    pub command: ChaosCommand,
}

/// Faults to rehearse on the sim cluster. Each runs a probe against every app through the
/// elb, waits for the platform to recover, heals, and prints availability, latency and
/// recovery time; the journal (JSON) and a timeline report (SVG) go to
/// `<state dir>/<cluster>/chaos/`. Random choices print their seed; `--seed` replays them.
#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Kill N slaves (the seed's experiment: `--scale www=5`, then kill 4 of 5).
    KillSlaves {
        /// How many slaves, chosen at random (seeded).
        count: u32,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Kill N masters (ZooKeeper, Mesos master and Marathon go with each).
    KillMasters {
        /// How many masters, chosen at random (seeded); a majority loses the quorum.
        count: u32,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Kill N lbs (nginx + lb-sync); the elb must route around them.
    KillLbs {
        /// How many lbs, chosen at random (seeded).
        count: u32,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Kill the master that leads mesos, marathon or zookeeper.
    KillLeader {
        /// mesos, marathon or zookeeper.
        #[arg(value_parser = ["mesos", "marathon", "zookeeper"])]
        component: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Kill the nodes a selector names (SIGKILL: like pulling the plug).
    Kill {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Stop nodes gracefully (started again by the heal).
    Stop {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Start stopped or paused nodes.
    Start {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Freeze nodes for a while: `paas chaos pause --node slave-2 --for 30s`.
    Pause {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Cut one AZ off from the others, both ways, for a while: `partition-az sim-b --for 60s`.
    PartitionAz {
        /// The AZ to cut off (`paas sim status` lists them: sim-a, sim-b...).
        az: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Delay the nodes' packets to the cluster: `delay --ms 200 --role slave --for 30s`.
    Delay {
        #[arg(long)]
        ms: u32,
        /// Uniform jitter around --ms.
        #[arg(long, default_value_t = 0)]
        jitter_ms: u32,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Drop a share of the packets the nodes receive: `loss --percent 20 --role lb --for 30s`.
    Loss {
        #[arg(long)]
        percent: f64,
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Stop and start nodes one at a time, waiting for recovery after each: `--role master`.
    RestartRolling {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run a scripted scenario (TOML: steps of fault, wait, scale, deploy, assert).
    Run {
        file: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Undo every fault left in force (recorded, or found: paused or stopped nodes,
    /// network rules).
    Heal,
    /// Faults recorded as in force.
    Status,
}

/// Which nodes: filters combine; the amount applies to what matches.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// master, slave, lb or adminlb.
    #[arg(long)]
    pub role: Option<String>,
    /// Only nodes in this AZ.
    #[arg(long)]
    pub az: Option<String>,
    /// A node by name (repeatable): `--node slave-2`.
    #[arg(long = "node", value_name = "NAME")]
    pub nodes: Vec<String>,
    /// How many of the matching nodes (default: all).
    #[arg(long, conflicts_with = "fraction")]
    pub count: Option<u32>,
    /// Which share of the matching nodes, 0 < F ≤ 1, rounded up.
    #[arg(long)]
    pub fraction: Option<f64>,
}

impl TargetArgs {
    fn selector(&self) -> anyhow::Result<Selector> {
        Ok(Selector::from_parts(
            "--role",
            self.role.as_deref(),
            self.az.as_deref(),
            &self.nodes,
            self.count,
            self.fraction,
        )
        .map_err(BadInput)?)
    }
}

/// How a fault is run and judged.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Heal after this long (`30s`, `2m`). Required for pause, partition, delay and loss;
    /// without it kills and stops last until the platform recovered without the nodes.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Seed of the random choice of nodes (printed on every run; pass it to replay).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Show which nodes would be hit and what would be done, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Probe requests per second through the elb (1 to 500).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    pub rate: u32,
    /// How long to wait for the platform to recover before calling it failed.
    #[arg(long, value_name = "DURATION", default_value = "180s", value_parser = humantime::parse_duration)]
    pub recover_timeout: Duration,
    /// Fail unless at least this percent of requests succeed during the fault.
    #[arg(long, value_name = "PERCENT", value_parser = percent)]
    pub min_availability: Option<f64>,
    /// Fail unless the platform recovers within this long.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub recover_within: Option<Duration>,
    /// Fail unless p99 latency during the fault stays at or below this, in ms.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// Keep killed or stopped nodes down at least this long, so the probe measures the
    /// platform without them even when it recovers at once.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// Set an app's instances before the fault, e.g. `--scale www=5` (repeatable).
    #[arg(long, value_name = "APP=N")]
    pub scale: Vec<String>,
    /// Leave killed or stopped nodes down at the end (recorded; `paas chaos heal` undoes).
    #[arg(long)]
    pub no_heal: bool,
}

impl RunArgs {
    fn hypothesis(&self) -> Hypothesis {
        Hypothesis {
            min_availability: self.min_availability,
            recover_within: self.recover_within,
            max_p99_ms: self.max_p99_ms,
        }
    }

    fn scale_steps(&self) -> anyhow::Result<Vec<Step>> {
        self.scale
            .iter()
            .map(|s| {
                let (app, n) = s
                    .split_once('=')
                    .ok_or_else(|| BadInput(format!("--scale {s}: write APP=N, e.g. --scale www=5")))?;
                let instances = n
                    .parse()
                    .map_err(|_| BadInput(format!("--scale {s}: {n} is not a number of instances")))?;
                let app = if app.starts_with('/') { app.to_string() } else { format!("/{app}") };
                Ok(Step::Scale { app, instances })
            })
            .collect()
    }
}

fn percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{text} is not a percentage between 0 and 100")),
    }
}

/// Runs one `paas chaos` command.
pub async fn run(global: &GlobalArgs, args: ChaosArgs) -> anyhow::Result<()> {
    let ctx = Context::load_for(global, paas_core::Target::Sim)?;
    let store = ActiveStore::new(&ctx.state_dir, &ctx.spec.name);
    let (name, fault, run) = match args.command {
        ChaosCommand::Heal => return heal(&ctx, &store).await,
        ChaosCommand::Status => return status(&ctx, &store),
        ChaosCommand::Run { file, run } => {
            let scenario = Scenario::load(&file).map_err(|e| BadInput(format!("{:#}", anyhow::Error::new(e))))?;
            return execute(&ctx, &store, scenario, run, global.quiet).await;
        }
        ChaosCommand::KillSlaves { count, run } => (
            "kill-slaves",
            Fault::Kill {
                target: Selector::role(Role::Slave, count),
            },
            run,
        ),
        ChaosCommand::KillMasters { count, run } => (
            "kill-masters",
            Fault::Kill {
                target: Selector::role(Role::Master, count),
            },
            run,
        ),
        ChaosCommand::KillLbs { count, run } => (
            "kill-lbs",
            Fault::Kill {
                target: Selector::role(Role::Lb, count),
            },
            run,
        ),
        ChaosCommand::KillLeader { component, run } => (
            "kill-leader",
            Fault::KillLeader {
                component: scenario::parse_component(&component).map_err(BadInput)?,
            },
            run,
        ),
        ChaosCommand::Kill { target, run } => (
            "kill",
            Fault::Kill {
                target: target.selector()?,
            },
            run,
        ),
        ChaosCommand::Stop { target, run } => (
            "stop",
            Fault::Stop {
                target: target.selector()?,
            },
            run,
        ),
        ChaosCommand::Start { target, run } => (
            "start",
            Fault::Start {
                target: target.selector()?,
            },
            run,
        ),
        ChaosCommand::Pause { target, run } => (
            "pause",
            Fault::Pause {
                target: target.selector()?,
            },
            run,
        ),
        ChaosCommand::PartitionAz { az, run } => ("partition-az", Fault::PartitionAz { az }, run),
        ChaosCommand::Delay {
            ms,
            jitter_ms,
            target,
            run,
        } => (
            "delay",
            Fault::Delay {
                target: target.selector()?,
                ms,
                jitter_ms,
            },
            run,
        ),
        ChaosCommand::Loss { percent, target, run } => (
            "loss",
            Fault::Loss {
                target: target.selector()?,
                percent,
            },
            run,
        ),
        ChaosCommand::RestartRolling { target, run } => (
            "restart-rolling",
            Fault::RestartRolling {
                target: target.selector()?,
            },
            run,
        ),
    };
    if fault.needs_duration() && run.duration.is_none() {
        return Err(BadInput(format!("{name} lasts until healed: give --for, e.g. --for 30s")).into());
    }
    let mut steps = run.scale_steps()?;
    steps.push(Step::Fault {
        fault: fault.clone(),
        duration: run.duration,
        heal: !run.no_heal,
    });
    let scenario = Scenario {
        name: format!("{} on {}", fault.describe(), ctx.spec.name),
        seed: None,
        rate: None,
        recover_timeout: None,
        hypothesis: run.hypothesis(),
        steps,
    };
    execute(&ctx, &store, scenario, run, global.quiet).await
}

async fn connect(ctx: &Context) -> anyhow::Result<Arc<SimPlatform>> {
    let sim = Sim::connect(ctx.spec.clone(), &ctx.state_dir, None).await?;
    Ok(Arc::new(SimPlatform::new(sim)))
}

async fn execute(ctx: &Context, store: &ActiveStore, scenario: Scenario, run: RunArgs, quiet: bool) -> anyhow::Result<()> {
    let platform = connect(ctx).await?;
    let nodes = platform.nodes().await?;
    if nodes.is_empty() {
        return Err(BadInput(format!("cluster {} has no nodes: run `paas sim up` first", ctx.spec.name)).into());
    }
    let left = store.load()?;
    if !left.is_empty() && !run.dry_run {
        let names: Vec<&str> = left.iter().map(|f| f.description.as_str()).collect();
        return Err(BadInput(format!(
            "faults of an earlier run are still in force ({}); run `paas chaos heal` first",
            names.join("; ")
        ))
        .into());
    }
    let seed = run.seed.or(scenario.seed).unwrap_or_else(rand::random);
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    say(&format!("{} (seed {seed}; replay with --seed {seed})", scenario.name));

    if run.dry_run {
        return dry_run(ctx, &*platform, &scenario, seed).await;
    }

    let cancel = CancellationToken::new();
    watch_interrupts(cancel.clone());
    let config = SessionConfig {
        rate: scenario.rate.unwrap_or(run.rate),
        probe_timeout: Duration::from_secs(5),
        recover_timeout: scenario.recover_timeout.unwrap_or(run.recover_timeout),
        observe_every: Duration::from_secs(1),
        hold: run.hold,
        seed,
    };
    let platform_dyn: Arc<dyn Platform> = platform.clone();
    let mut session = Session::start(platform_dyn, store, config, cancel.clone(), &say).await?;
    let steady = session.expect_steady(Duration::from_secs(60)).await;
    let outcome = match steady {
        Ok(()) => {
            // A short baseline before the first fault, for the timeline.
            match session.sleep(Duration::from_secs(3)).await {
                Ok(()) => scenario::run(&mut session, &*platform, &scenario, seed).await,
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    };
    let interrupted = matches!(outcome, Err(SessionError::Interrupted));
    let leftover = session.heal_remaining().await;
    if let Err(e) = session.sleep(Duration::from_secs(2)).await
        && !interrupted
    {
        tracing::debug!("cool-down cut short: {e}");
    }
    let journal = session.finish(&scenario.name, interrupted).await;
    let (journal_path, report_path) = write_outputs(ctx, &journal)?;
    print_summary(ctx, &journal, &journal_path, &report_path)?;
    if !leftover.is_empty() {
        eprintln!(
            "error: some faults could not be healed ({}); run `paas chaos heal`",
            leftover.join("; ")
        );
    }
    let result = match outcome {
        Err(SessionError::Interrupted) if leftover.is_empty() => Err(anyhow::anyhow!("interrupted; every fault of this run was healed")),
        Err(SessionError::Interrupted) => Err(anyhow::anyhow!("interrupted")),
        Err(SessionError::NotSteady(missing)) => Err(BadInput(format!(
            "the cluster is not in its steady state, so a fault would measure nothing ({}); wait, or run `paas sim up`",
            missing.join("; ")
        ))
        .into()),
        Err(e) => Err(e).context("running the chaos scenario"),
        Ok(()) if !journal.passed => {
            let failed: Vec<String> = journal
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            Err(anyhow::anyhow!("the steady-state hypothesis failed: {}", failed.join("; ")))
        }
        Ok(()) => Ok(()),
    };
    match result {
        Ok(()) if !leftover.is_empty() => anyhow::bail!("faults are left in force: run `paas chaos heal`"),
        other => other,
    }
}

/// First Ctrl-C: stop, heal, report. Second: exit at once (the record keeps what to heal).
fn watch_interrupts(cancel: CancellationToken) {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("interrupted: healing, then writing the journal (Ctrl-C again to quit now)");
        cancel.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("quitting; faults may remain: run `paas chaos heal`");
            std::process::exit(130);
        }
    });
}

async fn dry_run(ctx: &Context, platform: &dyn Platform, scenario: &Scenario, seed: u64) -> anyhow::Result<()> {
    let mut plans = Vec::new();
    for (index, step) in scenario.steps.iter().enumerate() {
        let Step::Fault { fault, duration, .. } = step else { continue };
        let plan = scenario::plan_now(platform, fault, scenario::step_seed(seed, index))
            .await
            .map_err(BadInput)?;
        plans.push((plan, *duration));
    }
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({
            "seed": seed,
            "plans": plans.iter().map(|(p, d)| json!({ "plan": p, "for": d.map(|d| d.as_secs_f64()) })).collect::<Vec<_>>(),
        }))?,
        OutputFormat::Text => {
            println!("Dry run (seed {seed}): nothing is changed. Against the cluster as it is now:");
            for (plan, duration) in &plans {
                println!("  {}: {}", plan.description, plan.targets.join(", "));
                for effect in &plan.effects {
                    println!("    - {}", effect.describe());
                }
                match duration {
                    Some(d) => println!("    healed after {}", humantime::format_duration(*d)),
                    None => println!("    lasts until the platform recovered, then healed"),
                }
            }
        }
    }
    Ok(())
}

fn write_outputs(ctx: &Context, journal: &Journal) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = ctx.state_dir.join(&ctx.spec.name).join("chaos");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let slug: String = journal
        .faults
        .first()
        .map(|f| f.description.as_str())
        .unwrap_or("run")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    let stem = format!("{}-{slug}", journal.started_unix_ms / 1000);
    let journal_path = dir.join(format!("{stem}.json"));
    let report_path = dir.join(format!("{stem}.svg"));
    write_file(&journal_path, &serde_json::to_string(journal)?)?;
    write_file(&report_path, &paas_scenarios::report::svg(journal))?;
    write_file(&report_path.with_extension("html"), &paas_scenarios::report_html::html(journal))?;
    // Absolute, so scripts can open them from anywhere.
    let absolute = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    Ok((absolute(journal_path), absolute(report_path)))
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

fn print_summary(ctx: &Context, journal: &Journal, journal_path: &Path, report_path: &Path) -> anyhow::Result<()> {
    if ctx.output == OutputFormat::Json {
        return ctx.print_json(&json!({
            "name": journal.name,
            "seed": journal.seed,
            "passed": journal.passed,
            "interrupted": journal.interrupted,
            "faults": journal.faults,
            "checks": journal.checks,
            "journal": journal_path,
            "report": report_path,
        }));
    }
    for f in &journal.faults {
        println!("{}: {}", f.description, f.targets.join(", "));
        println!(
            "  requests   {} ({} failed{}), availability {}",
            f.requests,
            f.failed,
            if f.not_sent > 0 {
                format!("; not sent: {}", f.not_sent)
            } else {
                String::new()
            },
            f.availability.map(|a| format!("{a:.3}%")).unwrap_or_else(|| "n/a".into())
        );
        println!(
            "  latency    p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            f.latency.p50, f.latency.p99, f.latency.max
        );
        match f.recovery_seconds {
            Some(r) => {
                let phases: Vec<String> = f.phases.iter().map(|p| format!("{} {:.1}s", p.name, p.seconds)).collect();
                println!(
                    "  recovery   {r:.1}s after the {}{}",
                    if f.recovery_from_heal { "heal" } else { "fault" },
                    if phases.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", phases.join(", "))
                    }
                );
            }
            None => println!("  recovery   NONE: {}", f.unrecovered.join("; ")),
        }
        if let Some(note) = &f.capacity_note {
            println!("  capacity   {note}");
        }
        let leaders: Vec<String> = f
            .leader_changes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        println!(
            "  tasks      {} lost, {} started, {} answered; leader changes: {}",
            f.tasks_lost,
            f.tasks_started,
            f.answering_tasks,
            if leaders.is_empty() { "none".into() } else { leaders.join(", ") }
        );
    }
    for c in &journal.checks {
        println!("{} {}: {}", if c.passed { "✓" } else { "✗" }, c.name, c.detail);
    }
    println!("journal: {}", journal_path.display());
    println!("report:  {}", report_path.display());
    Ok(())
}

async fn heal(ctx: &Context, store: &ActiveStore) -> anyhow::Result<()> {
    let platform = connect(ctx).await?;
    let report = active::heal_all(&*platform, store).await?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&report)?,
        OutputFormat::Text => {
            if report.done.is_empty() && report.failed.is_empty() {
                println!("Nothing to heal in cluster {}.", ctx.spec.name);
            }
            for done in &report.done {
                println!("healed: {done}");
            }
            for failed in &report.failed {
                println!("FAILED: {failed}");
            }
        }
    }
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} heals failed; the record in {} keeps them for another `paas chaos heal`",
        report.failed.len(),
        store.path().display()
    );
    Ok(())
}

fn status(ctx: &Context, store: &ActiveStore) -> anyhow::Result<()> {
    let faults = store.load()?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&faults)?,
        OutputFormat::Text if faults.is_empty() => println!("No fault in force in cluster {}.", ctx.spec.name),
        OutputFormat::Text => {
            for f in &faults {
                let heals: Vec<String> = f.heals.iter().map(|h| h.describe()).collect();
                println!("{}: since {} (heal: {})", f.description, f.started, heals.join(", "));
            }
        }
    }
    Ok(())
}

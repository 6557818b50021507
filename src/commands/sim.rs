//! `paas sim up|status|scale|down|logs|images`: the cluster in local Docker containers.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use paas_docker::images::ImageProgress;
use paas_docker::sim::{Endpoints, Sim, ensure_images};
use serde_json::json;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::commands::app::Marathon;
use crate::context::{BadInput, Context};
use crate::output;
use crate::progress::Progress;

/// Flags of `paas sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: SimCommand,
}

/// What to do with the local cluster.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Creates what is missing, waits until the cluster is healthy, deploys the spec's apps
    /// and prints the endpoints. Changes nothing when the cluster already matches the spec.
    Up(UpArgs),
    /// Nodes by AZ and role, health, leaders, agents and apps.
    Status,
    /// Sets the number of nodes of a role on the running cluster; other nodes are untouched.
    Scale(ScaleArgs),
    /// Removes every container and network of the cluster, and nothing else. Safe to re-run.
    Down,
    /// A node's log: the whole container, or one program's.
    Logs(LogsArgs),
    /// Builds the sim images if their inputs changed, and lists them.
    Images,
}

/// Flags of `paas sim up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Seconds to wait for the cluster to become healthy, then for the apps to answer.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Do not deploy the spec's apps.
    #[arg(long)]
    pub no_apps: bool,
    /// Apply the changes when the cluster exists with a different spec (otherwise `up` shows
    /// the plan and stops).
    #[arg(long)]
    pub apply_changes: bool,
}

/// A role `scale` can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleRole {
    Masters,
    Slaves,
    Lbs,
}

impl ScaleRole {
    /// The role's key under `[nodes]`.
    pub fn key(self) -> &'static str {
        match self {
            ScaleRole::Masters => "masters",
            ScaleRole::Slaves => "slaves",
            ScaleRole::Lbs => "lbs",
        }
    }

    /// The role's count in a spec.
    fn count_mut(self, spec: &mut paas_core::ClusterSpec) -> &mut u32 {
        match self {
            ScaleRole::Masters => &mut spec.nodes.masters,
            ScaleRole::Slaves => &mut spec.nodes.slaves,
            ScaleRole::Lbs => &mut spec.nodes.lbs,
        }
    }
}

/// Flags of `paas sim scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    pub role: ScaleRole,
    pub count: u32,
    /// Seconds to wait for the cluster to be healthy again.
    #[arg(long, default_value_t = 180)]
    pub timeout: u64,
    /// Scale masters even though it replaces every master (a new ZooKeeper ensemble).
    #[arg(long)]
    pub force: bool,
}

/// Flags of `paas sim logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The node, e.g. `master-1`, `slave-3`, `lb-1`, `elb`.
    pub node: String,
    /// One program's log: zookeeper, mesos, marathon, nginx, lb-sync, haproxy.
    #[arg(long)]
    pub process: Option<String>,
}

/// Runs one `paas sim` command.
pub async fn run(global: &GlobalArgs, args: SimArgs) -> anyhow::Result<()> {
    let ctx = Context::load_for(global, paas_core::Target::Sim)?;
    match args.command {
        SimCommand::Up(up) => run_up(global, ctx, up).await,
        SimCommand::Status => run_status(ctx).await,
        SimCommand::Scale(scale) => run_scale(global, ctx, scale).await,
        SimCommand::Down => run_down(global, ctx).await,
        SimCommand::Logs(logs) => {
            let sim = Sim::connect(ctx.spec.clone(), &ctx.state_dir, None).await?;
            let text = sim.logs(&logs.node, logs.process.as_deref()).await?;
            match ctx.output {
                OutputFormat::Json => ctx.print_json(&json!({
                    "cluster": ctx.spec.name,
                    "node": logs.node,
                    "process": logs.process,
                    "lines": text.lines().collect::<Vec<_>>(),
                }))?,
                OutputFormat::Text => print!("{text}"),
            }
            Ok(())
        }
        SimCommand::Images => {
            let started = Instant::now();
            let tag = ensure_images(&image_progress(global.quiet)).await?;
            match ctx.output {
                OutputFormat::Json => ctx.print_json(&json!({ "node_image": tag, "seconds": started.elapsed().as_secs_f64() }))?,
                OutputFormat::Text => println!("{tag}"),
            }
            Ok(())
        }
    }
}

fn image_progress(quiet: bool) -> impl Fn(ImageProgress) + Sync {
    move |event| {
        if quiet {
            return;
        }
        match event {
            ImageProgress::Present { tag } => eprintln!("  image {tag}: present"),
            ImageProgress::Building { tag } => eprintln!("  image {tag}: building (the base takes a few minutes the first time)"),
            ImageProgress::Output { line, .. } => eprintln!("    {line}"),
            ImageProgress::Built { tag, seconds } => eprintln!("  image {tag}: built in {seconds:.1}s"),
        }
    }
}

/// The image every role without an explicit `[sim.images]` entry runs, built if needed;
/// `None` when every role names its own image.
async fn default_image(ctx: &Context, quiet: bool) -> anyhow::Result<Option<String>> {
    let images = &ctx.spec.sim.images;
    if [&images.master, &images.slave, &images.lb, &images.adminlb, &images.elb]
        .iter()
        .all(|i| i.is_some())
    {
        return Ok(None);
    }
    Ok(Some(ensure_images(&image_progress(quiet)).await?))
}

async fn run_up(global: &GlobalArgs, ctx: Context, args: UpArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let image = default_image(&ctx, global.quiet || ctx.output == OutputFormat::Json).await?;
    let sim = Sim::connect(ctx.spec.clone(), &ctx.state_dir, image).await?;
    let timeout = Duration::from_secs(args.timeout);
    let engine = sim.engine();
    let observed = engine.observe(&ctx.spec.name).await?;
    let graph = sim.graph();
    let plan = paas_core::engine::plan(&graph, &observed);
    let recorded: Vec<_> = engine.store().load()?.resources.into_values().collect();
    let meaning = paas_core::engine::meaning(&plan, &graph, &recorded);
    if !observed.is_empty() && !meaning.changes.is_empty() && !args.apply_changes {
        // Changing a running cluster can replace nodes: the user decides, knowing what. Lost
        // nodes coming back as they were is no change, and needs no decision.
        eprint!("{}", output::render_plan(&plan, output::colour()));
        return Err(BadInput(format!(
            "cluster {} exists with a different spec: {}; re-run with --apply-changes to make these changes",
            ctx.spec.name,
            meaning.describe_changes()
        ))
        .into());
    }
    let restored = meaning.restored_names();
    if !observed.is_empty() && !restored.is_empty() && !global.quiet && ctx.output == OutputFormat::Text {
        eprintln!(
            "Re-creating what is missing from cluster {}: {}",
            ctx.spec.name,
            restored.join(", ")
        );
    }
    let progress = Progress::new(plan.steps.len(), global.quiet || ctx.output == OutputFormat::Json);
    let text = ctx.output == OutputFormat::Text;
    if text && !global.quiet {
        if plan.is_empty() {
            eprintln!("Cluster {} is up to date: nothing to change.", ctx.spec.name);
        } else {
            eprintln!("Applying {} to cluster {}:", plan.summary(), ctx.spec.name);
        }
    }
    let last_wait = std::sync::Mutex::new(String::new());
    let report = sim
        .up(timeout, &|event| progress.handle(event), &|health| {
            let waiting = health.waiting_for().join("; ");
            let mut last = last_wait.lock().unwrap();
            if text && !global.quiet && *last != waiting {
                eprintln!("  waiting for {waiting}");
                *last = waiting;
            }
        })
        .await;
    progress.finish();
    let report = report?;
    let healthy_after = started.elapsed();

    let mut apps = Vec::new();
    if !args.no_apps {
        let marathon = Marathon::parse(&Endpoints::of(&ctx.spec).marathon)?;
        for definition in app_definitions(&ctx)? {
            apps.push(marathon.deploy_if_missing(&definition).await?);
        }
        if apps.iter().any(|a| a["id"] == "/www") {
            wait_for_www(&ctx, timeout).await?;
        }
    }
    let serving_after = started.elapsed();
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({
            "cluster": ctx.spec.name,
            "changed": !report.plan.is_empty(),
            "restored": restored,
            "plan": report.plan,
            "health": report.health,
            "apps": apps,
            "endpoints": report.endpoints,
            "seconds_to_healthy": healthy_after.as_secs_f64(),
            "seconds_to_serving": serving_after.as_secs_f64(),
        }))?,
        OutputFormat::Text => {
            println!(
                "Cluster {} is healthy ({:.1}s){}.",
                ctx.spec.name,
                healthy_after.as_secs_f64(),
                if report.plan.is_empty() { ", nothing changed" } else { "" }
            );
            for app in &apps {
                println!(
                    "  app {}: {}",
                    app["id"].as_str().unwrap_or("?"),
                    app["result"].as_str().unwrap_or("?")
                );
            }
            print_endpoints(&report.endpoints);
        }
    }
    Ok(())
}

/// The spec's app definitions: its files, or the built-in `www` app when it names none.
fn app_definitions(ctx: &Context) -> anyhow::Result<Vec<String>> {
    let Some(paths) = &ctx.spec.apps else {
        return Ok(vec![paas_core::app::WWW_APP_JSON.to_string()]);
    };
    let base = ctx
        .spec_path
        .as_deref()
        .and_then(std::path::Path::parent)
        .unwrap_or(std::path::Path::new("."));
    paths
        .iter()
        .map(|p| std::fs::read_to_string(base.join(p)).with_context(|| format!("reading the app definition {}", base.join(p).display())))
        .collect()
}

/// Waits until `www.<domain>` answers 200 through the elb.
async fn wait_for_www(ctx: &Context, timeout: Duration) -> anyhow::Result<()> {
    let url = format!("http://www.{}:{}/", ctx.spec.domain, ctx.spec.sim.http_port);
    let www = Marathon::parse(&url)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(answer) = www.request("GET", "/", None).await
            && answer.status == 200
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "www did not answer 200 at {url} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The cluster's URLs: by name (browsers, curl) and on plain 127.0.0.1 ports (every client).
fn print_endpoints(endpoints: &Endpoints) {
    println!("  apps:     {}", endpoints.apps);
    println!("  marathon: {} (any HTTP client: {})", endpoints.marathon, endpoints.marathon_api);
    println!("  mesos:    {} (any HTTP client: {})", endpoints.mesos, endpoints.mesos_api);
}

async fn run_status(ctx: Context) -> anyhow::Result<()> {
    let sim = Sim::connect(ctx.spec.clone(), &ctx.state_dir, None).await?;
    let status = sim.status().await?;
    let marathon = Marathon::parse(&status.endpoints.marathon)?;
    let apps = marathon.list().await.ok();
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({ "status": status, "apps": apps }))?,
        OutputFormat::Text => {
            if status.nodes.is_empty() {
                println!("Cluster {} has no nodes: run `paas sim up`.", status.cluster);
                return Ok(());
            }
            println!("Cluster {}:", status.cluster);
            println!("  {:<6} {:<8} {:<12} {:<14} STATE", "AZ", "ROLE", "NODE", "ADDRESS");
            for node in &status.nodes {
                println!(
                    "  {:<6} {:<8} {:<12} {:<14} {}",
                    node.az, node.role, node.name, node.address, node.state
                );
            }
            let h = &status.health;
            let zk: Vec<String> = h
                .zookeeper
                .iter()
                .map(|(n, m)| format!("{n}={}", m.as_deref().unwrap_or("down")))
                .collect();
            println!(
                "  zookeeper: {} ({})",
                if h.zookeeper_ok() { "quorum" } else { "NO QUORUM" },
                zk.join(", ")
            );
            print!(
                "{}",
                output::leader_lines(
                    h.mesos_leader.as_deref(),
                    h.agents_registered,
                    h.agents_expected,
                    h.marathon_leader.as_deref()
                )
            );
            println!("  lbs: {}; elb: {}", output::lbs_summary(&h.lbs), if h.elb { "ok" } else { "down" });
            for lb in &status.lb_routes {
                let routes: Vec<String> = lb.routes.iter().map(|(name, n)| format!("{name} ({n})")).collect();
                println!(
                    "  {} routes: {}",
                    lb.lb,
                    if routes.is_empty() { "none".to_string() } else { routes.join(", ") }
                );
            }
            for agent in &status.task_containers {
                println!("  {} task containers:", agent.node);
                for task in &agent.tasks {
                    println!("    {} {} {} ({})", task.container, task.task_id, task.image, task.state);
                }
            }
            print_endpoints(&status.endpoints);
            for app in apps.as_ref().and_then(|a| a.as_array()).into_iter().flatten() {
                println!(
                    "  app {}: {} running, {} healthy, {} desired",
                    app["id"].as_str().unwrap_or("?"),
                    app["tasksRunning"].as_u64().unwrap_or(0),
                    app["tasksHealthy"].as_u64().unwrap_or(0),
                    app["instances"].as_u64().unwrap_or(0)
                );
            }
        }
    }
    Ok(())
}

async fn run_scale(global: &GlobalArgs, ctx: Context, args: ScaleArgs) -> anyhow::Result<()> {
    if args.role == ScaleRole::Masters {
        // Removing masters at once can cost the ZooKeeper quorum the running ensemble needs.
        let current = ctx.spec.nodes.masters;
        let quorum = current / 2 + 1;
        if args.count < quorum {
            return Err(BadInput(format!(
                "scaling masters from {current} to {} would leave fewer than the quorum of {quorum}",
                args.count
            ))
            .into());
        }
    }
    // The new count is checked by the spec's own rules before anything is touched.
    let flag = format!("`scale {} {}`", args.role.key(), args.count);
    let spec = ctx.overridden(&flag, |spec| *args.role.count_mut(spec) = args.count)?;
    let image = default_image(&ctx, global.quiet).await?;
    let sim = Sim::connect(spec, &ctx.state_dir, image).await?;
    let plan = sim.engine().plan(&sim.graph()).await?;
    if args.role == ScaleRole::Masters && plan.count(paas_core::Action::Replace) > 0 && !args.force {
        // Every master's zoo.cfg names the whole ensemble, so each master is rebuilt, and
        // ZooKeeper's data (Marathon's apps) lives on the masters.
        eprint!("{}", output::render_plan(&plan, output::colour()));
        return Err(BadInput(format!(
            "scaling masters replaces every master ({}): the ZooKeeper ensemble starts afresh and Marathon forgets its apps; re-run with --force to do it",
            plan.summary()
        ))
        .into());
    }
    // The spec says what was scaled from here on: status, plan and the next up agree with
    // it. Written before the apply, so an interrupted scale is finished by `paas sim up`.
    let written = ctx.persist_node_count(args.role.key(), args.count)?;
    if !global.quiet && ctx.output == OutputFormat::Text {
        eprintln!("Wrote nodes.{} = {} to {}.", args.role.key(), args.count, written.display());
    }
    if args.role == ScaleRole::Slaves {
        drain_removed_agents(&ctx, &sim, &plan, Duration::from_secs(args.timeout), global.quiet).await?;
    }
    let progress = Progress::new(plan.steps.len(), global.quiet || ctx.output == OutputFormat::Json);
    let report = sim.up(Duration::from_secs(args.timeout), &|e| progress.handle(e), &|_| {}).await;
    progress.finish();
    let report = report?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({ "plan": report.plan, "health": report.health, "spec": written }))?,
        OutputFormat::Text => println!("{} ({}); the cluster is healthy.", report.plan.summary(), ctx.spec.name),
    }
    Ok(())
}

async fn run_down(global: &GlobalArgs, ctx: Context) -> anyhow::Result<()> {
    let sim = Sim::connect(ctx.spec.clone(), &ctx.state_dir, None).await?;
    let observed = sim.engine().observe(&ctx.spec.name).await?;
    let progress = Progress::new(observed.len(), global.quiet || ctx.output == OutputFormat::Json);
    let result = sim.down(&|e| progress.handle(e)).await;
    progress.finish();
    let (plan, _) = result?;
    ctx.forget_recorded_spec()?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({ "cluster": ctx.spec.name, "removed": plan.steps.len() }))?,
        OutputFormat::Text if plan.is_empty() => println!("Cluster {} has nothing to remove.", ctx.spec.name),
        OutputFormat::Text => println!("Removed {} resources of cluster {}.", plan.steps.len(), ctx.spec.name),
    }
    Ok(())
}

/// Before agents are removed, moves their tasks: each leaving agent is stopped (its tasks
/// end with it), then Marathon is given time to run every app at full strength on the
/// agents that stay. Without a reachable Marathon the agents are removed directly.
async fn drain_removed_agents(ctx: &Context, sim: &Sim, plan: &paas_core::Plan, timeout: Duration, quiet: bool) -> anyhow::Result<()> {
    let leaving: Vec<&paas_core::Observed> = plan
        .steps
        .iter()
        .filter(|s| s.action == paas_core::Action::Delete)
        .filter_map(|s| s.current.as_ref())
        .filter(|o| o.attrs.get("role").map(String::as_str) == Some("slave"))
        .collect();
    if leaving.is_empty() {
        return Ok(());
    }
    let addresses: Vec<&str> = leaving.iter().filter_map(|o| o.attrs.get("address").map(String::as_str)).collect();
    for node in &leaving {
        if !quiet {
            eprintln!("  draining {}", node.id.name());
        }
        paas_core::Backend::node_op(&sim.backend, &ctx.spec.name, node, paas_core::NodeOp::Stop).await?;
    }
    let marathon = Marathon::parse(&Endpoints::of(&ctx.spec).marathon)?;
    let deadline = Instant::now() + timeout;
    loop {
        let Ok(apps) = marathon.list().await else {
            eprintln!("warning: Marathon does not answer: removing the agents without waiting for their tasks to move");
            return Ok(());
        };
        let tasks = marathon.request("GET", "/v2/tasks", None).await?.expect_success("listing tasks")?;
        let on_leaving = tasks["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["host"].as_str().is_some_and(|h| addresses.contains(&h)))
            .count();
        let settled = apps.as_array().into_iter().flatten().all(|app| {
            let wanted = app["instances"].as_u64().unwrap_or(0);
            let checked = app["healthChecks"].as_array().is_some_and(|h| !h.is_empty());
            let counted = if checked {
                app["tasksHealthy"].as_u64()
            } else {
                app["tasksRunning"].as_u64()
            };
            counted.unwrap_or(0) >= wanted
        });
        if on_leaving == 0 && settled {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the tasks of the leaving agents did not move within {timeout:?} ({on_leaving} still on them)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

//! `paas aws plan|up|status|scale|down|refresh`: the cluster on AWS across availability zones.
//!
//! Credentials and region come from the standard AWS chain (environment, `--profile`, SSO);
//! `--endpoint-url` points every client at an emulator. Nothing secret is ever printed.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use paas_aws::{Connection, Deployment, Outcome, Waits};
use serde_json::json;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::context::{BadInput, Context};
use crate::output;
use crate::progress::Progress;

/// Flags of `paas aws`.
#[derive(Debug, Args)]
pub struct AwsArgs {
    /// Number of availability zones to spread over (default: the spec's `azs`).
    #[arg(long, global = true, value_name = "N")]
    pub azs: Option<u32>,
    /// AWS region (default: the spec's `aws.region`, else the standard AWS chain).
    #[arg(long, global = true, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Named profile of the AWS configuration files.
    #[arg(long, global = true, env = "AWS_PROFILE")]
    pub profile: Option<String>,
    /// Send every AWS call here instead (an emulator such as moto).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The `paas-node` instances install (a Linux x86_64 build needing glibc ≤ 2.36), uploaded
    /// to the cluster's private artifact bucket. Default: the `paas-node` beside `paas`.
    #[arg(long, global = true, value_name = "PATH")]
    pub node_binary: Option<PathBuf>,
    #[command(subcommand)]
    pub command: AwsCommand,
}

/// What to do with the cluster on AWS.
#[derive(Debug, Subcommand)]
pub enum AwsCommand {
    /// Show what `up` would change, reading AWS; changes nothing.
    Plan,
    /// Create or update everything the spec describes, wait for instances running and the lbs
    /// in service, print the name servers to delegate the domain to, then deploy the spec's
    /// apps and wait until the cluster is healthy through its admin entry (Mesos leader,
    /// agents, Marathon leader, apps, www through the ELB). On an existing cluster, shows what
    /// would change and asks first (lost instances are re-created without asking: that is no
    /// change). A new node binary replaces the instances one at a time, masters first.
    Up(UpArgs),
    /// The cluster's nodes by AZ as AWS reports them, the ELB, the name servers, and its health
    /// through the admin entry (not at an emulator, where instances never boot).
    Status,
    /// Set the number of nodes of a role and apply; other nodes are untouched. Then waits until
    /// the cluster is healthy, as `up` does.
    Scale(ScaleArgs),
    /// Delete every resource of the cluster, in reverse order, waiting for each dependency.
    Down,
    /// Rebuild the state file from the resources' tags (after losing it).
    Refresh,
}

/// Flags of `paas aws up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Apply changes to an existing cluster without asking (needed when not on a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Wait for nothing: stop once the infrastructure is applied (no apps deployed, no health
    /// awaited), and roll replaced instances without waiting for the cluster to serve between
    /// two of them — the way to roll a fixed binary over a cluster that does not serve.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the cluster to become healthy once applied.
    #[arg(long, default_value_t = 1800, value_name = "SECONDS")]
    pub timeout: u64,
}

/// A role `scale` can change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScaleRole {
    Slaves,
    Lbs,
}

impl ScaleRole {
    /// The role's key under `[nodes]`.
    pub fn key(self) -> &'static str {
        match self {
            ScaleRole::Slaves => "slaves",
            ScaleRole::Lbs => "lbs",
        }
    }
}

/// Flags of `paas aws scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    pub role: ScaleRole,
    pub count: u32,
}

/// Runs one `paas aws` command. Asking for more zones than the region has is bad input.
pub async fn run(global: &GlobalArgs, args: AwsArgs) -> anyhow::Result<()> {
    run_command(global, args)
        .await
        .map_err(|err| match err.downcast_ref::<paas_aws::DeploymentError>() {
            Some(paas_aws::DeploymentError::Placement { .. }) => BadInput(format!("{err:#}")).into(),
            _ => err,
        })
}

async fn run_command(global: &GlobalArgs, args: AwsArgs) -> anyhow::Result<()> {
    let mut ctx = Context::load_for(global, paas_core::Target::Aws)?;
    // Every override goes through the spec's own checks before anything is contacted.
    if let Some(region) = &args.region {
        ctx.spec = ctx.overridden(&format!("--region {region}"), |spec| spec.aws.region = Some(region.clone()))?;
    }
    if let Some(azs) = args.azs {
        ctx.spec = ctx.overridden(&format!("--azs {azs}"), |spec| spec.azs = azs)?;
    }
    if let AwsCommand::Scale(scale) = &args.command {
        let flag = format!("`scale {} {}`", scale.role.key(), scale.count);
        ctx.spec = ctx.overridden(&flag, |spec| match scale.role {
            ScaleRole::Slaves => spec.nodes.slaves = scale.count,
            ScaleRole::Lbs => spec.nodes.lbs = scale.count,
        })?;
    }
    // What `plan`, `up` and `scale` deliver, checked before AWS is contacted.
    let node_binary = match args.command {
        AwsCommand::Plan | AwsCommand::Up(_) | AwsCommand::Scale(_) => Some(node_binary(args.node_binary.as_deref())?),
        _ => None,
    };
    let connection = Connection::Chain {
        region: args.region.clone().or_else(|| ctx.spec.aws.region.clone()),
        profile: args.profile.clone(),
        endpoint_url: args.endpoint_url.clone(),
    };
    let no_wait = matches!(&args.command, AwsCommand::Up(up) if up.no_wait);
    let mut deployment = Deployment::connect(ctx.spec.clone(), &ctx.state_dir, &connection, Waits::default())
        .await
        .context("connecting to AWS")?;
    if let Some(binary) = node_binary {
        deployment = deployment.with_node_binary(binary);
    }
    if no_wait {
        deployment = deployment.without_roll_gate();
    }
    let quiet = global.quiet || ctx.output == OutputFormat::Json;
    if !quiet {
        for warning in deployment.warnings() {
            eprintln!("warning: {warning}");
        }
    }
    match args.command {
        AwsCommand::Plan => {
            let plan = deployment.plan().await?;
            match ctx.output {
                OutputFormat::Json => ctx.print_json(&plan)?,
                OutputFormat::Text => {
                    println!("Plan for cluster `{}` on aws in {}:", plan.cluster, deployment.region());
                    print!("{}", output::render_plan(&plan, output::colour()));
                    if let Some(roll) = describe_roll(&plan, deployment.is_emulator(), no_wait) {
                        println!("{roll}");
                    }
                }
            }
            Ok(())
        }
        AwsCommand::Up(_) | AwsCommand::Scale(_) => {
            let plan = deployment.plan().await?;
            match &args.command {
                AwsCommand::Up(up) => confirm_changes(&ctx, &deployment, &plan, up.yes, quiet).await?,
                AwsCommand::Scale(scale) => {
                    // The spec says what was scaled from here on; written before the apply so
                    // that an interrupted scale is finished by the next `paas aws up`.
                    let written = ctx.persist_node_count(scale.role.key(), scale.count)?;
                    if !quiet {
                        eprintln!("Wrote nodes.{} = {} to {}.", scale.role.key(), scale.count, written.display());
                    }
                }
                _ => {}
            }
            let progress = Progress::new(plan.steps.len(), quiet);
            if !quiet {
                eprintln!(
                    "Applying {} to cluster {} in {}:",
                    plan.summary(),
                    ctx.spec.name,
                    deployment.region()
                );
            }
            if !quiet && let Some(roll) = describe_roll(&plan, deployment.is_emulator(), no_wait) {
                eprintln!("{roll}");
            }
            let outcome = deployment.up("aws up", &|event| progress.handle(event)).await;
            progress.finish();
            let outcome = outcome?;
            let status = deployment.status().await?;
            let wait = match &args.command {
                AwsCommand::Up(up) => (!up.no_wait).then_some(Duration::from_secs(up.timeout)),
                _ => Some(Duration::from_secs(1800)),
            };
            let health = match wait {
                _ if deployment.is_emulator() => {
                    if !quiet {
                        eprintln!(
                            "Not checking the cluster's health: at an emulator (--endpoint-url) instances never boot; stopped after the infrastructure."
                        );
                    }
                    None
                }
                None => None,
                Some(timeout) => Some(wait_healthy(&ctx, &deployment, timeout, quiet).await?),
            };
            report(&ctx, &outcome, Some(&status), health.as_ref())
        }
        AwsCommand::Down => {
            let progress = Progress::new(0, quiet);
            let outcome = deployment.down(&|event| progress.handle(event)).await;
            progress.finish();
            let outcome = outcome?;
            ctx.forget_recorded_spec()?;
            report(&ctx, &outcome, None, None)
        }
        AwsCommand::Refresh => {
            let state = deployment.refresh().await?;
            match ctx.output {
                OutputFormat::Json => ctx.print_json(&state)?,
                OutputFormat::Text => println!(
                    "Recorded {} resources of cluster {} from their tags.",
                    state.resources.len(),
                    ctx.spec.name
                ),
            }
            Ok(())
        }
        AwsCommand::Status => {
            let status = deployment.status().await?;
            let health = match deployment.is_emulator() || status.resources == 0 {
                true => None,
                false => match deployment.health(&app_ids(&app_definitions(&ctx)?)).await {
                    Ok(health) => Some(health),
                    Err(paas_aws::DeploymentError::NoAdminEntry) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            match ctx.output {
                OutputFormat::Json => {
                    // The status's own keys, and the health beside them.
                    let mut value = serde_json::to_value(&status)?;
                    value["health"] = serde_json::to_value(&health)?;
                    ctx.print_json(&value)?
                }
                OutputFormat::Text => {
                    print_status(&status);
                    if let Some(health) = &health {
                        print_health(health);
                    } else if deployment.is_emulator() && status.resources > 0 {
                        println!("  health: not checked at an emulator (--endpoint-url): instances never boot");
                    }
                }
            }
            Ok(())
        }
    }
}

/// How the plan replaces instances, and what that does and does not guarantee; `None` when
/// no instance is replaced in turn.
fn describe_roll(plan: &paas_core::Plan, emulator: bool, no_wait: bool) -> Option<String> {
    if plan.rolling.is_empty() {
        return None;
    }
    let order: Vec<&str> = plan.rolling.iter().map(|id| id.name()).collect();
    let gate = if emulator {
        "At an emulator instances never boot, so nothing is waited for between two instances."
    } else if no_wait {
        "--no-wait: nothing is waited for between two instances; a node slower to boot than the next \
         termination can leave two masters down at once."
    } else {
        "Before terminating each instance and after its replacement runs, `up` waits until the instance \
         passes EC2's status checks and the cluster serves through its admin entry: a Mesos leader with \
         every agent registered, a Marathon leader, every lb in service behind the elb; a cluster that \
         does not serve within the wait stops the roll. Not visible from outside the VPC: a new \
         master's ZooKeeper rejoining the ensemble."
    };
    Some(format!(
        "Rolling {} instances one at a time, masters first: {}.\n\
         The elb and DNS records are updated, not replaced; a new lb joins the elb as soon as it runs.\n{gate}",
        order.len(),
        order.join(", ")
    ))
}

/// The `paas-node` to deliver: `--node-binary`, else the one beside this `paas` when it is a
/// Linux x86_64 build. Bad input (exit 2, nothing contacted) when there is none.
fn node_binary(flag: Option<&Path>) -> anyhow::Result<paas_core::resource::NodeBinary> {
    if let Some(path) = flag {
        return paas_aws::node_binary::inspect(path).map_err(|e| BadInput(format!("--node-binary: {e}")).into());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("paas-node")));
    let why = match &beside {
        Some(path) => match paas_aws::node_binary::inspect(path) {
            Ok(binary) => return Ok(binary),
            Err(e) => e.to_string(),
        },
        None => "the directory of the running paas is unknown".into(),
    };
    Err(BadInput(format!(
        "no paas-node to install on the instances ({why}); give a Linux x86_64 build with --node-binary PATH"
    ))
    .into())
}

/// On an existing cluster, a plan that changes it is shown and needs a yes (the flag, or an
/// answer on the terminal); re-creating lost resources as they were recorded needs none.
/// Fails with bad input (nothing changed) when the change is not confirmed.
async fn confirm_changes(ctx: &Context, deployment: &Deployment, plan: &paas_core::Plan, yes: bool, quiet: bool) -> anyhow::Result<()> {
    let graph = deployment.graph().await?;
    let exists = plan.count(paas_core::Action::Create) < graph.len() || plan.steps.iter().any(|s| s.current.is_some());
    let recorded: Vec<_> = paas_core::engine::StateStore::new(&ctx.state_dir, &ctx.spec.name, "aws")
        .load()?
        .resources
        .into_values()
        .collect();
    let meaning = paas_core::engine::meaning(plan, &graph, &recorded);
    if !quiet && exists && !meaning.restores.is_empty() {
        eprintln!(
            "Re-creating what is missing from cluster {}: {}",
            ctx.spec.name,
            meaning.restored_names().join(", ")
        );
    }
    if !exists || meaning.changes.is_empty() || yes {
        return Ok(());
    }
    eprint!("{}", output::render_plan(plan, output::colour()));
    let what = meaning.describe_changes();
    if !std::io::stdin().is_terminal() {
        return Err(BadInput(format!(
            "cluster {} exists in {} with a different spec: {what}; re-run with --yes to make these changes",
            ctx.spec.name,
            deployment.region()
        ))
        .into());
    }
    eprint!("Change cluster {} in {} ({what})? [y/N] ", ctx.spec.name, deployment.region());
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("reading the answer")?;
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(BadInput("not confirmed; nothing was changed".into()).into())
    }
}

/// The spec's app definitions: its files, or the built-in `www` app when it names none.
fn app_definitions(ctx: &Context) -> anyhow::Result<Vec<String>> {
    let Some(paths) = &ctx.spec.apps else {
        return Ok(vec![paas_core::app::WWW_APP_JSON.to_string()]);
    };
    let base = ctx.spec_path.as_deref().and_then(Path::parent).unwrap_or(Path::new("."));
    paths
        .iter()
        .map(|p| std::fs::read_to_string(base.join(p)).with_context(|| format!("reading the app definition {}", base.join(p).display())))
        .collect()
}

/// The ids of app definitions (those without one are left to Marathon to refuse).
fn app_ids(definitions: &[String]) -> Vec<String> {
    definitions
        .iter()
        .filter_map(|d| {
            serde_json::from_str::<serde_json::Value>(d)
                .ok()?
                .get("id")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Waits for Marathon through the admin entry, deploys the spec's apps that are missing, then
/// waits until every health check passes; progress on stderr.
async fn wait_healthy(ctx: &Context, deployment: &Deployment, timeout: Duration, quiet: bool) -> anyhow::Result<paas_aws::health::Health> {
    let definitions = app_definitions(ctx)?;
    let ids = app_ids(&definitions);
    let last = std::sync::Mutex::new(String::new());
    let on_wait = |health: &paas_aws::health::Health| {
        let waiting = health.waiting_for().join("; ");
        let mut last = last.lock().expect("not poisoned");
        if !quiet && *last != waiting {
            eprintln!("  waiting for {waiting}");
            *last = waiting;
        }
    };
    let interval = Duration::from_secs(10);
    if !quiet {
        eprintln!(
            "Waiting for the cluster to serve through its admin entry (at most {}s):",
            timeout.as_secs()
        );
    }
    deployment
        .wait_for(&[], timeout, interval, paas_aws::health::Health::marathon_ok, &on_wait)
        .await?;
    for (id, result) in deployment.deploy_apps(&definitions).await? {
        if !quiet {
            eprintln!("  app {id}: {result}");
        }
    }
    let health = deployment
        .wait_for(&ids, timeout, interval, paas_aws::health::Health::is_healthy, &on_wait)
        .await?;
    Ok(health)
}

/// The health view of `paas sim status`, as far as it can be seen from outside the VPC.
fn print_health(h: &paas_aws::health::Health) {
    println!("  zookeeper: not reachable from outside the VPC (a Mesos leader stands for its quorum)");
    print!(
        "{}",
        output::leader_lines(
            h.mesos_leader.as_deref(),
            h.agents_registered,
            h.agents_expected,
            h.marathon_leader.as_deref()
        )
    );
    let www = match h.www {
        Some(true) => "ok",
        Some(false) => "down",
        None => "not deployed",
    };
    println!("  lbs: {}; elb www: {www}", output::lbs_summary(&h.lbs));
    for app in &h.apps {
        println!(
            "  app {}: {} running, {} healthy, {} desired",
            app.id, app.running, app.healthy, app.desired
        );
    }
}

fn report(
    ctx: &Context,
    outcome: &Outcome,
    status: Option<&paas_aws::Status>,
    health: Option<&paas_aws::health::Health>,
) -> anyhow::Result<()> {
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&json!({ "outcome": outcome, "status": status, "health": health })),
        OutputFormat::Text => {
            println!(
                "Cluster {}: {} ({} AWS API calls, {:.1}s).",
                ctx.spec.name,
                outcome.plan.summary(),
                outcome.api_calls,
                outcome.elapsed_ms as f64 / 1000.0
            );
            if let Some(status) = status {
                print_status(status);
            }
            if let Some(health) = health {
                println!("Cluster {} is healthy:", ctx.spec.name);
                print_health(health);
            }
            Ok(())
        }
    }
}

fn print_status(status: &paas_aws::Status) {
    if status.resources == 0 {
        println!(
            "Cluster {} has no resources in {}: run `paas aws up`.",
            status.cluster, status.region
        );
        return;
    }
    println!("Cluster {} in {} ({} resources):", status.cluster, status.region, status.resources);
    println!(
        "  {:<14} {:<12} {:<20} {:<10} {:<14} PUBLIC",
        "AZ", "NODE", "INSTANCE", "STATE", "ADDRESS"
    );
    for n in &status.nodes {
        println!(
            "  {:<14} {:<12} {:<20} {:<10} {:<14} {}",
            n.az,
            n.name,
            n.instance_id,
            n.state,
            n.private_ip,
            n.public_ip.as_deref().unwrap_or("-")
        );
    }
    if let Some(dns) = &status.elb_dns_name {
        println!("  elb: {dns}");
    }
    if !status.name_servers.is_empty() {
        println!("  delegate the domain to: {}", status.name_servers.join(" "));
    }
}

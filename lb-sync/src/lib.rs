//! lb-sync, shipped as `paas-node lb-sync`: keeps nginx routing every Marathon app `/foo` as
//! `foo.<domain>`. It is the one program that serves production traffic, so it is a crate of its
//! own that knows nothing of the sim's Mesos and Marathon programs.
//!
//! It follows Marathon's `/v2/events` stream on any reachable Marathon (failing over between
//! them with backoff), coalesces bursts of events, reads `/v2/apps?embed=apps.tasks` after each
//! burst, on every reconnect and every `--resync`, renders the routes of the healthy running
//! tasks ([`render::render`]), checks them with `nginx -t`, swaps the routes file atomically and
//! reloads nginx only when the routes changed. Routes nginx rejects are never installed: the
//! apps nginx refuses are left out, or, if that does not help, the last good routes stay. When
//! no Marathon answers, nginx keeps the last good routes.
//!
//! With `--mode=admin` it keeps the admin entry's upstreams on the current Mesos and Marathon
//! leaders instead ([`admin`]). lb-sync speaks no ZooKeeper: whoever runs it hands it the
//! leading Mesos master as a [`MesosLeader`] (`paas-node` passes the detector its Mesos agents
//! use, so both find the leader the same way).
//!
//! Layout: [`wire`] (Marathon's JSON) → [`route`] (virtual hosts and backend tasks) →
//! [`render`] (the routes file, pure) → [`nginx`] (check, install, reload); [`event`] decodes the
//! event stream, [`follow`] follows it across Marathons ([`marathons`]), and [`route_sync`] is
//! the loop that ties them together.

pub mod admin;
pub mod event;
pub mod follow;
pub mod marathons;
pub mod nginx;
pub mod render;
pub mod route;
pub mod route_sync;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use self::follow::{Signals, follow_events};
use self::marathons::Marathons;
use self::nginx::Nginx;
use self::route::{InvalidHostName, VirtualHost};
use self::route_sync::{RouteSync, RouteSyncConfig};

/// Flags of `paas-node lb-sync`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Marathon base URLs, comma-separated; any of them will do, lb-sync fails over between them.
    #[arg(long, value_delimiter = ',', required = true)]
    pub marathon: Vec<String>,
    /// The domain apps are served under: `/group/app` becomes `app.group.<domain>`.
    #[arg(long)]
    pub domain: String,
    /// The routes file lb-sync owns; the main nginx config includes it inside `http {}`.
    #[arg(long)]
    pub nginx_conf: PathBuf,
    /// The nginx executable, used to check the routes (`-t`) and to reload.
    #[arg(long, default_value = "nginx")]
    pub nginx_bin: PathBuf,
    /// nginx's main config, which includes the routes file.
    #[arg(long, default_value = "/etc/nginx/nginx.conf")]
    pub nginx_main_conf: PathBuf,
    /// nginx's prefix (`-p`), when not the compiled-in one.
    #[arg(long)]
    pub nginx_prefix: Option<PathBuf>,
    /// Where the app virtual hosts listen, as nginx's `listen`: a port, or IPv4 address and port.
    #[arg(long, default_value = "80", value_parser = parse_listen)]
    pub listen: String,
    /// Read all apps in full at least this often, events or not.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub resync: Duration,
    /// Never reload nginx more often than this.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub min_reload_interval: Duration,
    /// Gather events this long before reading the apps once for the whole burst.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    pub coalesce: Duration,
    /// `routes`: the app virtual hosts of an lb; `admin`: the admin entry's upstreams, kept on
    /// the current Mesos and Marathon leaders (`--nginx-conf` is then the upstreams file).
    #[arg(long, value_enum, default_value_t = Mode::Routes)]
    pub mode: Mode,
    /// How often Marathon's leader is asked for (admin mode).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub leader_poll: Duration,
}

/// The leading Mesos master as `host:port`, `None` while none leads (or none is known yet).
/// Admin mode follows it; the sender side is whatever watches the Mesos cluster.
pub type MesosLeader = watch::Receiver<Option<String>>;

/// What lb-sync keeps in its nginx file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The app virtual hosts of an lb, from Marathon's apps.
    Routes,
    /// The admin entry's upstreams, on the current Mesos and Marathon leaders.
    Admin,
}

/// Why lb-sync cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid --domain")]
    Domain(#[source] InvalidHostName),
    #[error("invalid --marathon")]
    Marathon(#[source] marathons::MarathonError),
    #[error("--resync must be longer than zero")]
    Resync,
    #[error("--mode=admin needs the leading Mesos master to follow (paas-node: --mesos-zk)")]
    MesosLeader,
}

/// Runs lb-sync until Ctrl-C or SIGTERM; `mesos_leader` is needed in admin mode only.
///
/// Fails only when the flags are invalid (or admin mode has no `mesos_leader`); Marathon or
/// nginx failures are logged and retried.
pub async fn run(args: Args, mesos_leader: Option<MesosLeader>) -> Result<(), StartError> {
    run_until(args, mesos_leader, shutdown_signal()).await
}

/// Runs lb-sync until `shutdown` completes.
///
/// Fails only when the flags are invalid (or admin mode has no `mesos_leader`).
pub async fn run_until(args: Args, mesos_leader: Option<MesosLeader>, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    let domain = VirtualHost::parse(&args.domain).map_err(StartError::Domain)?;
    if args.resync.is_zero() {
        return Err(StartError::Resync);
    }
    let marathons = Arc::new(Marathons::new(&args.marathon).map_err(StartError::Marathon)?);
    let nginx = Nginx {
        bin: args.nginx_bin,
        main_conf: args.nginx_main_conf,
        prefix: args.nginx_prefix,
        routes: args.nginx_conf,
    };
    if args.mode == Mode::Admin {
        let config = admin::AdminConfig {
            mesos_leader: mesos_leader.ok_or(StartError::MesosLeader)?,
            marathons: args
                .marathon
                .iter()
                .filter_map(|raw| reqwest::Url::parse(&format!("{}/", raw.trim().trim_end_matches('/'))).ok())
                .collect(),
            nginx,
            poll: args.leader_poll.max(Duration::from_millis(100)),
        };
        admin::run(config, shutdown).await;
        return Ok(());
    }
    let config = RouteSyncConfig {
        domain,
        listen: args.listen,
        resync: args.resync,
        min_reload_interval: args.min_reload_interval,
        coalesce: args.coalesce,
    };
    let signals = Arc::new(Signals::default());
    let follower = tokio::spawn(follow_events(marathons.clone(), signals.clone()));
    RouteSync::new(config, marathons, nginx, signals).run(shutdown).await;
    follower.abort();
    Ok(())
}

/// Accepts `80` or `127.0.0.1:80`: nothing else may reach nginx's `listen` directive.
fn parse_listen(value: &str) -> Result<String, String> {
    let valid = value.parse::<u16>().is_ok_and(|p| p != 0) || value.parse::<std::net::SocketAddrV4>().is_ok_and(|a| a.port() != 0);
    if valid {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is neither a port nor IPv4-address:port"))
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::warn!(%error, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        // Cancel-safe: either way lb-sync stops, nothing is lost.
        _ = tokio::signal::ctrl_c() => {}
        // Cancel-safe: as above.
        _ = term.recv() => {}
    }
}

//! lb-sync against what paas-core renders for an lb: the flags it is started with, and the main
//! nginx config that includes its routes.

use clap::Parser;
use paas_core::render::{nginx as core_nginx, paths, ports};
use paas_core::{ClusterSpec, Topology};
use paas_lb_sync::Args;
use paas_lb_sync::render::render;
use paas_lb_sync::route::{RoutingTable, VirtualHost};
use paas_lb_sync::wire::AppList;

use crate::support::nginx::nginx_logged_in;

#[derive(Parser)]
struct LbSync {
    #[command(flatten)]
    args: Args,
}

#[test]
fn lb_sync_accepts_the_flags_and_main_config_paas_core_renders() {
    let spec = ClusterSpec::default();
    let topology = Topology::place(&spec, &Topology::sim_zones(3)).expect("placing the default cluster");
    let flags = core_nginx::lb_sync_flags(&topology);
    let parsed = LbSync::try_parse_from(std::iter::once("lb-sync".to_owned()).chain(flags.iter().cloned()))
        .unwrap_or_else(|e| panic!("lb-sync refuses core's flags {flags:?}: {e}"));
    let args = parsed.args;
    assert_eq!(
        args.marathon.len(),
        topology.nodes_of(paas_core::Role::Master).count(),
        "one URL per master"
    );
    assert_eq!(args.nginx_conf.to_str(), Some(paths::NGINX_ROUTES));
    assert_eq!(
        args.nginx_main_conf.to_str(),
        Some(paths::NGINX_CONF),
        "the default main config is core's"
    );
    assert_eq!(
        args.listen,
        ports::HTTP.to_string(),
        "vhosts listen where core's default server does"
    );

    // Routes rendered with those flags pass `nginx -t` inside core's main config, its paths moved
    // into a temporary directory.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let main = core_nginx::lb_conf()
        .replace(paths::NGINX_ROUTES, &format!("{d}/routes.conf"))
        .replace("/run/nginx.pid", &format!("{d}/nginx.pid"))
        .replace("/var/log/nginx/", &format!("{d}/"));
    assert!(
        main.contains(&format!("include {d}/routes.conf;")),
        "core's main config includes the routes file:\n{main}"
    );
    let apps: AppList = serde_json::from_value(serde_json::json!({"apps": [
        {"id": "/www", "tasks": [{"host": "127.0.0.1", "ports": [31000], "state": "TASK_RUNNING"}]},
        {"id": "/shop/web-front", "labels": {"PAAS_VHOST": "shop.example.test"},
         "tasks": [{"host": "127.0.0.2", "ports": [31001], "state": "TASK_RUNNING"}]},
        {"id": "/idle", "tasks": []}
    ]}))
    .unwrap();
    let domain = VirtualHost::parse(&args.domain).expect("core's domain is a host name");
    let routes = render(&RoutingTable::from_apps(&apps.apps, &domain), &args.listen);
    std::fs::write(dir.path().join("routes.conf"), &routes).unwrap();
    std::fs::write(dir.path().join("nginx.conf"), &main).unwrap();
    let output = nginx_logged_in(dir.path()).args(["-t", "-q"]).output().expect("running nginx -t");
    assert!(
        output.status.success(),
        "nginx -t: {}\n{main}\n{routes}",
        String::from_utf8_lossy(&output.stderr)
    );
}

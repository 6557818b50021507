//! nginx on the lbs (base config; lb-sync writes the routes) and on the admin entry.

use std::fmt::Write;

use super::{paths, ports};
use crate::topology::{Role, Topology};

const HTTP_COMMON: &str = "    access_log off;
    error_log /var/log/nginx/error.log warn;
    server_names_hash_bucket_size 128;
    proxy_http_version 1.1;
    proxy_set_header Connection \"\";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_connect_timeout 2s;
";

/// The lbs' `nginx.conf`. Its default server answers `/status` for the external load
/// balancer's health check (and 404 for unknown hosts); lb-sync owns the included routes file.
pub fn lb_conf() -> String {
    format!(
        "# lb: the external load balancer checks /status; lb-sync writes {routes}\n\
         worker_processes auto;\npid /run/nginx.pid;\n\
         events {{\n    worker_connections 4096;\n}}\n\
         http {{\n{HTTP_COMMON}\
         \n    server {{\n        listen {http} default_server;\n        server_name _;\n\
         \x20       location = /status {{\n            default_type text/plain;\n            return 200 \"OK\\n\";\n        }}\n\
         \x20       location / {{\n            return 404;\n        }}\n    }}\n\
         \n    include {routes};\n}}\n",
        routes = paths::NGINX_ROUTES,
        http = ports::HTTP,
    )
}

/// Flags of `lb-sync` on an lb: every Marathon, so it can fail over between them.
pub fn lb_sync_flags(topology: &Topology) -> Vec<String> {
    let marathons: Vec<String> = topology
        .nodes_of(Role::Master)
        .map(|m| format!("http://{}:{}", m.address, ports::MARATHON))
        .collect();
    vec![
        format!("--marathon={}", marathons.join(",")),
        format!("--domain={}", topology.domain),
        format!("--nginx-conf={}", paths::NGINX_ROUTES),
        format!("--nginx-bin={}", paths::NGINX_BIN),
        "--resync=30s".into(),
    ]
}

/// The admin entry's `nginx.conf`: `marathon.admin.<domain>` and `mesos.admin.<domain>` on
/// the HTTP port, and the same two on plain ports of their own (Marathon's and Mesos' usual
/// ports) for clients that cannot resolve the admin names; all admitted only from
/// `admin_sources`, everything else refused. The upstreams live in their own file
/// ([`adminlb_upstreams`]), which lb-sync in admin mode keeps on the current leaders.
///
/// Marathon's screen links each app at `<app>.<domain>`: the entry answers `/ui/paas.json`
/// with `apps_port`, the port the apps are served at (80 on AWS, `[sim] http_port` in the
/// sim), which the screen cannot know from its own address.
pub fn adminlb_conf(topology: &Topology, admin_sources: &[String], apps_port: u16) -> String {
    let mut conf = String::new();
    writeln!(conf, "# adminlb: Marathon and Mesos UIs, only from the admin CIDRs").unwrap();
    conf.push_str("worker_processes 1;\npid /run/nginx.pid;\nevents {\n    worker_connections 1024;\n}\nhttp {\n");
    conf.push_str(HTTP_COMMON);
    writeln!(
        conf,
        "\n    # lb-sync --mode=admin keeps these on the current leaders.\n    include {};",
        paths::ADMIN_UPSTREAMS
    )
    .unwrap();
    writeln!(
        conf,
        "\n    server {{\n        listen {} default_server;\n        server_name _;",
        ports::HTTP
    )
    .unwrap();
    conf.push_str("        location = /status {\n            default_type text/plain;\n            return 200 \"OK\\n\";\n        }\n        location / {\n            return 404;\n        }\n    }\n");
    let admit = |conf: &mut String, name: &str| {
        for source in admin_sources {
            writeln!(conf, "        allow {source};").unwrap();
        }
        conf.push_str("        deny all;\n");
        if name == "marathon" {
            writeln!(
                conf,
                "        location = /ui/paas.json {{\n            default_type application/json;\n            return 200 '{{\"appsPort\": {apps_port}}}';\n        }}"
            )
            .unwrap();
        }
        writeln!(
            conf,
            "        location / {{\n            proxy_pass http://{name};\n            proxy_next_upstream error timeout http_502 http_503;\n        }}\n    }}"
        )
        .unwrap();
    };
    for (name, port) in [("marathon", ports::MARATHON), ("mesos", ports::MESOS_MASTER)] {
        writeln!(
            conf,
            "\n    server {{\n        listen {};\n        server_name {name}.admin.{};",
            ports::HTTP,
            topology.domain
        )
        .unwrap();
        admit(&mut conf, name);
        writeln!(
            conf,
            "\n    server {{\n        listen {port} default_server;\n        server_name _;"
        )
        .unwrap();
        admit(&mut conf, name);
    }
    conf.push_str("}\n");
    conf
}

/// The admin entry's upstreams as the node starts: every master. lb-sync in admin mode then
/// narrows each to its leader.
pub fn adminlb_upstreams(topology: &Topology) -> String {
    let mut conf = String::from("# Every master until lb-sync --mode=admin names the leaders.\n");
    for (name, port) in [("mesos", ports::MESOS_MASTER), ("marathon", ports::MARATHON)] {
        writeln!(conf, "upstream {name} {{").unwrap();
        for master in topology.nodes_of(Role::Master) {
            writeln!(conf, "    server {}:{port} max_fails=1 fail_timeout=5s;", master.address).unwrap();
        }
        writeln!(conf, "}}").unwrap();
    }
    conf
}

/// Flags of `lb-sync` on the admin entry: admin mode, following the Mesos leader in ZooKeeper
/// and Marathon's through any Marathon.
pub fn admin_sync_flags(topology: &Topology) -> Vec<String> {
    let marathons: Vec<String> = topology
        .nodes_of(Role::Master)
        .map(|m| format!("http://{}:{}", m.address, ports::MARATHON))
        .collect();
    vec![
        "--mode=admin".into(),
        format!("--mesos-zk={}", topology.zk_url("mesos")),
        format!("--marathon={}", marathons.join(",")),
        format!("--domain={}", topology.domain),
        format!("--nginx-conf={}", paths::ADMIN_UPSTREAMS),
        format!("--nginx-bin={}", paths::NGINX_BIN),
    ]
}

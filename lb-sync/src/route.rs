//! Routes: which virtual host goes to which backend tasks. Built from Marathon's app list, with
//! only the tasks that may take traffic (running, and passing their health checks if they have
//! any).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::wire;

/// Labels that name an app's virtual hosts instead of its id; comma-separated lists allowed.
/// `PAAS_VHOST` wins; `HAPROXY_0_VHOST` is marathon-lb's, honoured for compatibility.
pub const VHOST_LABELS: [&str; 2] = ["PAAS_VHOST", "HAPROXY_0_VHOST"];

/// A host name nginx answers for: lowercase DNS labels of letters, digits and inner hyphens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtualHost(String);

/// Why a name cannot be a virtual host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} is not a valid host name: {reason}")]
pub struct InvalidHostName {
    pub name: String,
    pub reason: &'static str,
}

impl VirtualHost {
    /// Checks `name` as a DNS host name (case-folded to lowercase).
    ///
    /// Fails when it is empty, longer than 253 bytes, or has a label that is empty, longer than
    /// 63 bytes, starts or ends with a hyphen, or holds anything but letters, digits and hyphens.
    pub fn parse(name: &str) -> Result<VirtualHost, InvalidHostName> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let invalid = |reason| {
            Err(InvalidHostName {
                name: name.clone(),
                reason,
            })
        };
        if name.is_empty() {
            return invalid("empty");
        }
        if name.len() > 253 {
            return invalid("longer than 253 bytes");
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return invalid("a label is empty or longer than 63 bytes");
            }
            if label.starts_with('-') || label.ends_with('-') {
                return invalid("a label starts or ends with a hyphen");
            }
            if !label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                return invalid("only letters, digits, hyphens and dots are allowed");
            }
        }
        Ok(VirtualHost(name))
    }

    /// The host an app id is served at: `/a` → `a.<domain>`, `/group/app` → `app.group.<domain>`.
    ///
    /// Fails when the id has no segment or the result is not a valid host name.
    pub fn for_app_id(app_id: &str, domain: &VirtualHost) -> Result<VirtualHost, InvalidHostName> {
        let segments: Vec<&str> = app_id.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(InvalidHostName {
                name: app_id.to_owned(),
                reason: "the app id has no segment",
            });
        }
        let mut name: Vec<&str> = segments.into_iter().rev().collect();
        name.push(domain.as_str());
        VirtualHost::parse(&name.join("."))
    }

    /// The name, lowercase.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VirtualHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A task nginx may send requests to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    /// The agent's host name or IPv4 address, restricted to characters safe in nginx config.
    pub host: String,
    pub port: u16,
}

impl Backend {
    /// The address of a routable task: its host and first port.
    ///
    /// `None` when the task has no port, a port outside 1..=65535, or a host with characters
    /// that have no place in a host name (which could otherwise inject nginx directives).
    pub fn of_task(task: &wire::Task) -> Option<Backend> {
        let port = u16::try_from(*task.ports.first()?).ok().filter(|p| *p != 0)?;
        let host = task.host.trim();
        let safe = !host.is_empty()
            && host.len() <= 253
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            && !host.starts_with(['-', '.']);
        safe.then(|| Backend {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// One app's route: the hosts it is served at and the tasks that serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub app_id: String,
    /// Never empty; sorted.
    pub hosts: Vec<VirtualHost>,
    /// May be empty: the app exists but no task may take traffic (nginx answers 503).
    pub backends: BTreeSet<Backend>,
}

/// Every app's route, ordered by app id, each virtual host claimed by at most one app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingTable {
    pub routes: Vec<Route>,
}

/// Whether a task may take traffic: Marathon reports it running and, when its app has health
/// checks, it has a result for every check and all of them are alive.
pub fn is_routable(app: &wire::App, task: &wire::Task) -> bool {
    let running = match task.state.as_deref() {
        Some(state) => state == "TASK_RUNNING",
        // Marathons without `state` only set `startedAt` once the task runs.
        None => task.started_at.is_some(),
    };
    let healthy = app.health_checks.is_empty()
        || (task.health_check_results.len() >= app.health_checks.len() && task.health_check_results.iter().all(|r| r.alive));
    running && healthy
}

impl RoutingTable {
    /// The routes for Marathon's apps under `domain`. Never fails: a task that cannot be routed
    /// is left out, an invalid vhost label falls back to the id-derived name, and a host claimed
    /// by two apps goes to the one with the smaller id (both noted in the log).
    pub fn from_apps(apps: &[wire::App], domain: &VirtualHost) -> RoutingTable {
        let mut apps: Vec<&wire::App> = apps.iter().collect();
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        let mut claimed: BTreeMap<VirtualHost, &str> = BTreeMap::new();
        let mut routes = Vec::new();
        for app in apps {
            let mut hosts: Vec<VirtualHost> = Vec::new();
            for host in app_hosts(app, domain) {
                match claimed.get(&host) {
                    Some(owner) => {
                        tracing::warn!(app = %app.id, %host, owner, "virtual host already served by another app")
                    }
                    None => {
                        claimed.insert(host.clone(), &app.id);
                        hosts.push(host);
                    }
                }
            }
            if hosts.is_empty() {
                continue;
            }
            hosts.sort();
            hosts.dedup();
            let backends = app
                .tasks
                .iter()
                .filter(|t| is_routable(app, t))
                .filter_map(Backend::of_task)
                .collect();
            routes.push(Route {
                app_id: app.id.clone(),
                hosts,
                backends,
            });
        }
        RoutingTable { routes }
    }
}

/// The hosts an app asks for with a label, else the one derived from its id.
fn app_hosts(app: &wire::App, domain: &VirtualHost) -> Vec<VirtualHost> {
    for label in VHOST_LABELS {
        let Some(value) = app.labels.get(label) else {
            continue;
        };
        let parsed: Result<Vec<VirtualHost>, InvalidHostName> =
            value.split(',').filter(|s| !s.trim().is_empty()).map(VirtualHost::parse).collect();
        match parsed {
            Ok(hosts) if !hosts.is_empty() => return hosts,
            Ok(_) => {}
            Err(error) => tracing::warn!(app = %app.id, label, %error, "ignoring the vhost label"),
        }
    }
    match VirtualHost::for_app_id(&app.id, domain) {
        Ok(host) => vec![host],
        Err(error) => {
            tracing::warn!(app = %app.id, %error, "app cannot be routed");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> VirtualHost {
        VirtualHost::parse("paas.localhost").unwrap()
    }

    #[test]
    fn app_ids_map_to_hosts_under_the_domain() {
        let d = domain();
        assert_eq!(VirtualHost::for_app_id("/a", &d).unwrap().as_str(), "a.paas.localhost");
        assert_eq!(
            VirtualHost::for_app_id("/group/app", &d).unwrap().as_str(),
            "app.group.paas.localhost"
        );
        assert_eq!(VirtualHost::for_app_id("/my-app", &d).unwrap().as_str(), "my-app.paas.localhost");
        assert_eq!(VirtualHost::for_app_id("/a/b/c-d", &d).unwrap().as_str(), "c-d.b.a.paas.localhost");
        assert!(VirtualHost::for_app_id("/", &d).is_err());
        assert!(VirtualHost::for_app_id("/-bad", &d).is_err());
        assert!(VirtualHost::for_app_id("/a_b", &d).is_err());
    }

    #[test]
    fn host_names_reject_what_could_break_nginx_config() {
        for bad in ["", "a..b", "a;b", "a b", "a}", "-a", "a-", &"x".repeat(64), "$host"] {
            assert!(VirtualHost::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(VirtualHost::parse("WWW.Example.COM.").unwrap().as_str(), "www.example.com");
    }

    fn task(host: &str, port: i64, state: &str) -> wire::Task {
        wire::Task {
            id: format!("t-{host}-{port}"),
            host: host.into(),
            ports: vec![port],
            state: Some(state.into()),
            ..Default::default()
        }
    }

    #[test]
    fn only_running_healthy_tasks_are_backends() {
        let mut healthy = task("10.0.0.1", 31000, "TASK_RUNNING");
        healthy.health_check_results = vec![wire::HealthCheckResult { alive: true }];
        let mut sick = task("10.0.0.2", 31000, "TASK_RUNNING");
        sick.health_check_results = vec![wire::HealthCheckResult { alive: false }];
        let unchecked = task("10.0.0.3", 31000, "TASK_RUNNING");
        let staging = task("10.0.0.4", 31000, "TASK_STAGING");
        let app = wire::App {
            id: "/web".into(),
            health_checks: vec![serde_json::json!({"protocol": "HTTP"})],
            tasks: vec![healthy, sick, unchecked, staging],
            ..Default::default()
        };
        let table = RoutingTable::from_apps(&[app], &domain());
        let backends: Vec<String> = table.routes[0].backends.iter().map(|b| b.to_string()).collect();
        assert_eq!(backends, ["10.0.0.1:31000"]);
    }

    #[test]
    fn labels_override_the_host_and_conflicts_go_to_the_smaller_id() {
        let labelled = wire::App {
            id: "/zeta".into(),
            labels: [("HAPROXY_0_VHOST".to_owned(), "www.example.com, api.example.com".to_owned())].into(),
            ..Default::default()
        };
        let paas_label_wins = wire::App {
            id: "/y".into(),
            labels: [
                ("PAAS_VHOST".to_owned(), "a.paas.localhost".to_owned()),
                ("HAPROXY_0_VHOST".to_owned(), "ignored.example.com".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let derived = wire::App {
            id: "/a".into(),
            ..Default::default()
        };
        let bad_label = wire::App {
            id: "/b".into(),
            labels: [("PAAS_VHOST".to_owned(), "bad;host".to_owned())].into(),
            ..Default::default()
        };
        let table = RoutingTable::from_apps(&[labelled, paas_label_wins, derived, bad_label], &domain());
        let hosts: Vec<(String, Vec<String>)> = table
            .routes
            .iter()
            .map(|r| (r.app_id.clone(), r.hosts.iter().map(|h| h.to_string()).collect()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("/a".to_owned(), vec!["a.paas.localhost".to_owned()]),
                ("/b".to_owned(), vec!["b.paas.localhost".to_owned()]),
                ("/zeta".to_owned(), vec!["api.example.com".to_owned(), "www.example.com".to_owned()]),
            ]
        );
    }

    #[test]
    fn backends_refuse_hosts_and_ports_unsafe_for_nginx() {
        assert!(Backend::of_task(&task("10.0.0.1", 0, "TASK_RUNNING")).is_none());
        assert!(Backend::of_task(&task("10.0.0.1", 70000, "TASK_RUNNING")).is_none());
        assert!(Backend::of_task(&task("h;evil", 80, "TASK_RUNNING")).is_none());
        assert!(
            Backend::of_task(&wire::Task {
                host: "h".into(),
                ..Default::default()
            })
            .is_none()
        );
        assert_eq!(
            Backend::of_task(&task("agent-1.sim", 31001, "TASK_RUNNING")).unwrap().to_string(),
            "agent-1.sim:31001"
        );
    }
}

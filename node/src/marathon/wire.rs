//! Marathon's JSON as it travels: the stored (normalized) app definition, and what the REST API
//! answers (apps with their counts, tasks, version info, deployments). Kept apart from the
//! scheduler's domain types ([`super::app::AppSpec`], [`super::model`]) and converted at the edge.
//!
//! [`normalize`] is the one step that turns a posted definition into the stored one: it fills
//! every default Marathon fills and gives every port 0 a service port of its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::app::{self, AppSpec, DefinitionError, Violation};

/// The service-port range (`--local_port_min`, `--local_port_max`), as Marathon's defaults.
pub const LOCAL_PORT_MIN: u64 = 10000;
/// See [`LOCAL_PORT_MIN`]; the upper end is exclusive, as in Marathon.
pub const LOCAL_PORT_MAX: u64 = 20000;

/// Marathon's default `maxLaunchDelaySeconds` (app.raml).
pub const DEFAULT_MAX_LAUNCH_DELAY_SECONDS: f64 = 300.0;

/// One entry of `portDefinitions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortDefinition {
    pub port: u64,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn tcp() -> String {
    "tcp".into()
}

/// `upgradeStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    pub minimum_health_capacity: f64,
    pub maximum_over_capacity: f64,
}

/// `versionInfo`: when the instance count and when anything else last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub last_scaling_at: String,
    pub last_config_change_at: String,
}

/// A stored app definition: every field Marathon returns for an app, defaults filled. Fields
/// Marathon accepts but this scheduler does not act on (`fetch`, `secrets`, `tty`, ...) are kept
/// in `extra` and returned as posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    pub id: String,
    pub cmd: Option<String>,
    pub args: Option<Vec<String>>,
    pub user: Option<String>,
    pub env: Map<String, Value>,
    pub instances: u32,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    pub executor: String,
    pub constraints: Vec<Vec<String>>,
    pub uris: Vec<String>,
    pub ports: Vec<u64>,
    pub port_definitions: Vec<PortDefinition>,
    pub require_ports: bool,
    pub backoff_seconds: f64,
    pub backoff_factor: f64,
    pub max_launch_delay_seconds: f64,
    pub container: Option<Value>,
    pub health_checks: Vec<Map<String, Value>>,
    pub dependencies: Vec<String>,
    pub upgrade_strategy: UpgradeStrategy,
    pub labels: BTreeMap<String, String>,
    pub accepted_resource_roles: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Keys [`AppDefinition`] names itself (everything else posted goes to `extra`).
const KNOWN: &[&str] = &[
    "id",
    "cmd",
    "args",
    "user",
    "env",
    "instances",
    "cpus",
    "mem",
    "disk",
    "executor",
    "constraints",
    "uris",
    "ports",
    "portDefinitions",
    "requirePorts",
    "backoffSeconds",
    "backoffFactor",
    "maxLaunchDelaySeconds",
    "container",
    "healthChecks",
    "dependencies",
    "upgradeStrategy",
    "labels",
    "acceptedResourceRoles",
];

impl AppDefinition {
    /// The definition as a JSON object (what a client would PUT back).
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of maps, strings and finite numbers always serializes to an object.
            _ => Map::new(),
        }
    }

    /// Service ports in use by this app (of its port definitions, or of a Docker app's port
    /// mappings).
    pub fn service_ports(&self) -> impl Iterator<Item = u64> + '_ {
        self.ports.iter().copied()
    }

    /// The same definition but for the instance count: a change between two such is a scaling.
    pub fn same_config(&self, other: &AppDefinition) -> bool {
        let mut a = self.clone();
        a.instances = other.instances;
        a == *other
    }
}

/// A reference to a running deployment, as apps list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeploymentRef {
    pub id: String,
}

/// `lastTaskFailure` (task.raml `TaskFailure`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFailure {
    pub app_id: String,
    pub host: String,
    pub message: String,
    pub state: String,
    pub task_id: String,
    pub timestamp: String,
    pub version: String,
    pub slave_id: String,
}

/// One health check result of a task (healthCheck.raml `Health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    pub alive: bool,
    pub consecutive_failures: u32,
    pub first_success: Option<String>,
    pub last_failure: Option<String>,
    pub last_success: Option<String>,
    pub last_failure_cause: Option<String>,
    pub instance_id: String,
}

/// A task as `/v2/tasks`, `/v2/apps/{id}/tasks` and embedded apps give it (task.raml `Task`):
/// Marathon's fields and no others (clients with strict models refuse unknown ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskWire {
    pub id: String,
    pub app_id: String,
    pub host: String,
    pub ports: Vec<u64>,
    pub service_ports: Vec<u64>,
    pub slave_id: String,
    pub state: String,
    pub staged_at: String,
    pub started_at: Option<String>,
    pub version: String,
    pub ip_addresses: Vec<IpAddress>,
    /// Left out while there is none, as in Marathon's task examples.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub health_check_results: Vec<HealthCheckResult>,
    pub role: String,
}

/// One entry of a task's `ipAddresses`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    pub ip_address: String,
    pub protocol: String,
}

/// An app as the API returns it (app.raml `AppInfo`): the definition plus version and counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo<'a> {
    #[serde(flatten)]
    pub definition: &'a AppDefinition,
    pub version: String,
    pub version_info: VersionInfo,
    pub tasks_staged: usize,
    pub tasks_running: usize,
    pub tasks_healthy: usize,
    pub tasks_unhealthy: usize,
    pub deployments: Vec<DeploymentRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskWire>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_task_failure: Option<TaskFailure>,
}

/// An app version as `/v2/apps/{id}/versions/{version}` and the queue give it: the definition
/// with its version, no counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppVersion<'a> {
    #[serde(flatten)]
    pub definition: &'a AppDefinition,
    pub version: String,
    pub version_info: VersionInfo,
}

/// The answer of a change that starts a deployment (deploymentResult.raml).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentResult {
    pub deployment_id: String,
    pub version: String,
}

fn violation(path: impl Into<String>, error: impl Into<String>) -> Violation {
    Violation {
        path: path.into(),
        errors: vec![error.into()],
    }
}

fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    value
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
}

/// The port definitions a definition asks for, before service ports are assigned: from
/// `portDefinitions`, else from the legacy `ports`, else Marathon's default of one port 0 (none
/// for a containerized app, whose ports come from its port mappings).
fn requested_ports(map: &Map<String, Value>) -> Vec<PortDefinition> {
    if let Some(defs) = map.get("portDefinitions").and_then(Value::as_array) {
        return defs
            .iter()
            .map(|d| PortDefinition {
                port: d.get("port").and_then(Value::as_u64).unwrap_or(0),
                protocol: d.get("protocol").and_then(Value::as_str).unwrap_or("tcp").to_owned(),
                name: d.get("name").and_then(Value::as_str).map(str::to_owned),
                labels: d
                    .get("labels")
                    .and_then(Value::as_object)
                    .map(|l| {
                        l.iter()
                            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
    }
    let ports: Vec<u64> = match map.get("ports").and_then(Value::as_array) {
        Some(ports) => ports.iter().map(|p| p.as_u64().unwrap_or(0)).collect(),
        None if map.get("container").is_some_and(|c| !c.is_null()) => Vec::new(),
        None => vec![0],
    };
    ports
        .into_iter()
        .map(|port| PortDefinition {
            port,
            protocol: tcp(),
            name: None,
            labels: BTreeMap::new(),
        })
        .collect()
}

/// A health check with Marathon's defaults filled (healthCheck.raml).
fn normalize_health_check(check: &Value) -> Map<String, Value> {
    let mut out = check.as_object().cloned().unwrap_or_default();
    let protocol = out.get("protocol").and_then(Value::as_str).unwrap_or("HTTP").to_owned();
    out.insert("protocol".into(), Value::String(protocol.clone()));
    let mut default = |key: &str, value: Value| {
        if out.get(key).is_none_or(Value::is_null) {
            out.insert(key.into(), value);
        }
    };
    default("gracePeriodSeconds", 300.into());
    default("intervalSeconds", 60.into());
    default("timeoutSeconds", 20.into());
    default("maxConsecutiveFailures", 3.into());
    if protocol != "COMMAND" && out.get("port").is_none_or(Value::is_null) {
        out.remove("port");
        if out.get("portIndex").is_none_or(Value::is_null) {
            out.insert("portIndex".into(), 0.into());
        }
    }
    if protocol.contains("HTTP") {
        if out.get("path").is_none_or(Value::is_null) {
            out.insert("path".into(), "/".into());
        }
        if protocol == "HTTP" && out.get("ignoreHttp1xx").is_none_or(Value::is_null) {
            out.insert("ignoreHttp1xx".into(), false.into());
        }
    }
    out
}

/// Turns a posted (or stored) definition into the stored one: checks it, fills Marathon's
/// defaults, and gives every port 0 a service port from [`LOCAL_PORT_MIN`]..[`LOCAL_PORT_MAX`]
/// that no other app uses (`taken`), keeping the one `previous` had at the same index.
/// Normalizing a normalized definition gives it back unchanged.
pub fn normalize(
    map: &Map<String, Value>,
    previous: Option<&AppDefinition>,
    taken: &BTreeSet<u64>,
) -> Result<(AppDefinition, AppSpec), DefinitionError> {
    app::check(map)?;
    let mut port_definitions = requested_ports(map);
    let mut chosen: BTreeSet<u64> = port_definitions.iter().map(|p| p.port).filter(|&p| p != 0).collect();
    let mut violations = Vec::new();
    for (i, definition) in port_definitions.iter_mut().enumerate() {
        if definition.port != 0 {
            continue;
        }
        let kept = previous
            .and_then(|p| p.port_definitions.get(i))
            .map(|p| p.port)
            .filter(|p| (LOCAL_PORT_MIN..LOCAL_PORT_MAX).contains(p) && !chosen.contains(p) && !taken.contains(p));
        let port = kept.or_else(|| (LOCAL_PORT_MIN..LOCAL_PORT_MAX).find(|p| !chosen.contains(p) && !taken.contains(p)));
        match port {
            Some(port) => {
                chosen.insert(port);
                definition.port = port;
            }
            None => violations.push(violation(
                format!("/portDefinitions({i})/port"),
                format!("no free service port left in {LOCAL_PORT_MIN}-{LOCAL_PORT_MAX}; delete apps or give a fixed port"),
            )),
        }
    }
    // A Docker app's port mappings get their service ports the same way.
    let mut container = map.get("container").filter(|c| !c.is_null()).cloned();
    if let Some(container) = container.as_mut() {
        let bridge_networks = map
            .get("networks")
            .and_then(Value::as_array)
            .and_then(|n| n.first())
            .and_then(|n| n.get("mode"))
            .is_some_and(|mode| mode == "container/bridge");
        super::container::fill_defaults(container, bridge_networks);
    }
    let mut mapping_service_ports = Vec::new();
    if let Some(mappings) = container.as_mut().and_then(super::container::port_mappings_mut) {
        for (i, mapping) in mappings.iter_mut().enumerate() {
            let Some(mapping) = mapping.as_object_mut() else { continue };
            let asked = mapping.get("servicePort").and_then(Value::as_u64).unwrap_or(0);
            let port = if asked != 0 {
                Some(asked)
            } else {
                previous
                    .and_then(|p| p.ports.get(i).copied())
                    .filter(|p| (LOCAL_PORT_MIN..LOCAL_PORT_MAX).contains(p) && !chosen.contains(p) && !taken.contains(p))
                    .or_else(|| (LOCAL_PORT_MIN..LOCAL_PORT_MAX).find(|p| !chosen.contains(p) && !taken.contains(p)))
            };
            match port {
                Some(port) => {
                    chosen.insert(port);
                    mapping.insert("servicePort".into(), port.into());
                    mapping_service_ports.push(port);
                }
                None => violations.push(violation(
                    format!("/container/portMappings({i})/servicePort"),
                    format!("no free service port left in {LOCAL_PORT_MIN}-{LOCAL_PORT_MAX}; delete apps or give a fixed port"),
                )),
            }
        }
    }
    if !violations.is_empty() {
        return Err(DefinitionError::Invalid(violations));
    }
    let upgrade = map.get("upgradeStrategy");
    let number = |v: Option<&Value>, default: f64| v.and_then(Value::as_f64).unwrap_or(default);
    let definition = AppDefinition {
        id: app::normalize_id(map.get("id").and_then(Value::as_str).unwrap_or_default()),
        cmd: map.get("cmd").and_then(Value::as_str).map(str::to_owned),
        args: strings(map.get("args")),
        user: map.get("user").and_then(Value::as_str).map(str::to_owned),
        env: map.get("env").and_then(Value::as_object).cloned().unwrap_or_default(),
        instances: map.get("instances").and_then(Value::as_u64).unwrap_or(1) as u32,
        cpus: number(map.get("cpus"), 1.0),
        mem: number(map.get("mem"), 128.0),
        disk: number(map.get("disk"), 0.0),
        executor: map.get("executor").and_then(Value::as_str).unwrap_or_default().to_owned(),
        constraints: map
            .get("constraints")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(|c| strings(Some(c)).unwrap_or_default()).collect())
            .unwrap_or_default(),
        uris: strings(map.get("uris")).unwrap_or_default(),
        ports: if mapping_service_ports.is_empty() {
            port_definitions.iter().map(|p| p.port).collect()
        } else {
            mapping_service_ports
        },
        port_definitions,
        require_ports: map.get("requirePorts").and_then(Value::as_bool).unwrap_or(false),
        backoff_seconds: number(map.get("backoffSeconds"), 1.0),
        backoff_factor: number(map.get("backoffFactor"), 1.15),
        max_launch_delay_seconds: number(map.get("maxLaunchDelaySeconds"), DEFAULT_MAX_LAUNCH_DELAY_SECONDS),
        container,
        health_checks: map
            .get("healthChecks")
            .and_then(Value::as_array)
            .map(|list| list.iter().map(normalize_health_check).collect())
            .unwrap_or_default(),
        dependencies: strings(map.get("dependencies"))
            .unwrap_or_default()
            .iter()
            .map(|d| app::normalize_id(d))
            .collect(),
        upgrade_strategy: UpgradeStrategy {
            minimum_health_capacity: number(upgrade.and_then(|u| u.get("minimumHealthCapacity")), 1.0),
            maximum_over_capacity: number(upgrade.and_then(|u| u.get("maximumOverCapacity")), 1.0),
        },
        labels: map
            .get("labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
        accepted_resource_roles: strings(map.get("acceptedResourceRoles")),
        extra: map
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    // The scheduler's view is read from the stored form, so what runs is what GET shows.
    let spec = app::check(&definition.to_map())?;
    Ok((definition, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_bare_app_gets_marathons_defaults_and_a_service_port() {
        let (d, spec) = normalize(&obj(json!({"id": "web", "cmd": "run"})), None, &BTreeSet::new()).unwrap();
        let m = d.to_map();
        assert_eq!(m["id"], "/web");
        assert_eq!(m["labels"], json!({}));
        assert_eq!(m["env"], json!({}));
        assert_eq!(m["ports"], json!([10000]));
        assert_eq!(m["portDefinitions"], json!([{"port": 10000, "protocol": "tcp", "labels": {}}]));
        assert_eq!(m["requirePorts"], false);
        assert_eq!(m["backoffSeconds"], 1.0);
        assert_eq!(m["backoffFactor"], 1.15);
        assert_eq!(m["maxLaunchDelaySeconds"], 300.0);
        assert_eq!(
            m["upgradeStrategy"],
            json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0})
        );
        assert_eq!(m["args"], Value::Null);
        // The host port stays dynamic: the service port is for load balancers only.
        assert_eq!(spec.ports, vec![0]);
    }

    #[test]
    fn service_ports_are_unique_across_apps_and_kept_across_updates() {
        let taken: BTreeSet<u64> = [10000, 10001].into();
        let (d, _) = normalize(&obj(json!({"id": "a", "cmd": "x", "ports": [0, 0]})), None, &taken).unwrap();
        assert_eq!(d.ports, vec![10002, 10003]);
        let (again, _) = normalize(&obj(json!({"id": "a", "cmd": "y", "ports": [0, 0]})), Some(&d), &taken).unwrap();
        assert_eq!(again.ports, vec![10002, 10003]);
        let all: BTreeSet<u64> = (LOCAL_PORT_MIN..LOCAL_PORT_MAX).collect();
        let Err(DefinitionError::Invalid(v)) = normalize(&obj(json!({"id": "b", "cmd": "x"})), None, &all) else {
            panic!("no port left must be refused")
        };
        assert_eq!(v[0].path, "/portDefinitions(0)/port");
    }

    fn arb_app() -> impl Strategy<Value = Value> {
        (
            "[a-z]([a-z0-9-]{0,7}[a-z0-9])?",
            proptest::option::of(0u32..20),
            proptest::option::of(prop::collection::vec(prop_oneof![Just(0u64), 1u64..65535], 0..3)),
            proptest::option::of(prop::collection::btree_map("[a-z]{1,5}", "[a-z0-9 ]{0,5}", 0..3)),
            proptest::option::of(prop_oneof![Just("HTTP"), Just("TCP"), Just("COMMAND")]),
            any::<bool>(),
            proptest::option::of(0.0f64..=1.0),
        )
            .prop_map(|(id, instances, ports, labels, check, extra, capacity)| {
                let mut app = json!({"id": id, "cmd": "run"});
                if let Some(n) = instances {
                    app["instances"] = json!(n);
                }
                if let Some(p) = ports {
                    app["ports"] = json!(p);
                }
                if let Some(l) = labels {
                    app["labels"] = json!(l);
                }
                if let Some(protocol) = check {
                    app["healthChecks"] = json!([{ "protocol": protocol, "command": {"value": "true"} }]);
                }
                if extra {
                    app["fetch"] = json!([{ "uri": "http://x/y.tgz" }]);
                }
                if let Some(c) = capacity {
                    app["upgradeStrategy"] = json!({ "minimumHealthCapacity": c });
                }
                app
            })
    }

    proptest! {
        #[test]
        fn normalization_is_idempotent(app in arb_app(), taken in prop::collection::btree_set(10000u64..10010, 0..5)) {
            let (once, spec) = normalize(&obj(app), None, &taken).unwrap();
            let (twice, spec2) = normalize(&once.to_map(), Some(&once), &taken).unwrap();
            prop_assert_eq!(&once, &twice);
            prop_assert_eq!(spec, spec2);
            // And through JSON text, as a client sends it back.
            let text = serde_json::to_string(&once).unwrap();
            let parsed: Value = serde_json::from_str(&text).unwrap();
            let (thrice, _) = normalize(&obj(parsed), Some(&once), &taken).unwrap();
            prop_assert_eq!(once, thrice);
        }
    }
}

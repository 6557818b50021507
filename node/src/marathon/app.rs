//! App definitions: Marathon's JSON, checked as Marathon checks it.
//!
//! The definition is kept as the user sent it (every field, known or not, is echoed back as
//! Marathon does); [`AppSpec`] is the part the scheduler acts on, read out of it.

use serde::Serialize;
use serde_json::{Map, Value, json};

/// One problem of a definition, as Marathon's 422 `details` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub path: String,
    pub errors: Vec<String>,
}

/// Why a definition is refused: unparsable JSON (400) or invalid content (422).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionError {
    Malformed(String),
    Invalid(Vec<Violation>),
}

impl DefinitionError {
    /// The response body Marathon gives for this error.
    pub fn body(&self) -> Value {
        match self {
            DefinitionError::Malformed(message) => json!({ "message": format!("Invalid JSON: {message}") }),
            DefinitionError::Invalid(details) => json!({ "message": "Object is not valid", "details": details }),
        }
    }
}

/// A placement rule: `[field, operator, value?]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub field: String,
    pub operator: Operator,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Unique,
    Cluster,
    GroupBy,
    Like,
    Unlike,
    MaxPer,
}

/// A health check: HTTP and TCP are Marathon's own; a COMMAND check is sent to Mesos in the
/// TaskInfo and runs on the agent, which reports the task's health in its status updates.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
    /// The COMMAND check's shell command.
    pub command: Option<String>,
    /// Seconds before a COMMAND check first runs (`delaySeconds`, 15 by default).
    pub delay_secs: f64,
    pub path: String,
    pub port_index: usize,
    pub grace_period_secs: f64,
    pub interval_secs: f64,
    pub timeout_secs: f64,
    pub max_consecutive_failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthProtocol {
    Http,
    Tcp,
    Command,
}

/// What the scheduler needs of an app.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    pub id: String,
    pub instances: u32,
    pub cmd: Option<String>,
    pub args: Vec<String>,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Requested host ports; 0 means any.
    pub ports: Vec<u64>,
    pub require_ports: bool,
    pub env: Vec<(String, String)>,
    pub uris: Vec<(String, bool, bool)>,
    pub constraints: Vec<Constraint>,
    pub health_checks: Vec<HealthCheck>,
    pub backoff_secs: f64,
    pub backoff_factor: f64,
    pub max_launch_delay_secs: f64,
    pub minimum_health_capacity: f64,
    pub maximum_over_capacity: f64,
    /// A DOCKER container: the tasks run as Docker containers.
    pub docker: Option<super::container::DockerSpec>,
    /// `taskKillGracePeriodSeconds`: the kill policy of the tasks.
    pub kill_grace_secs: Option<f64>,
}

/// Fields Marathon computes and ignores on input.
const READ_ONLY: &[&str] = &[
    "version",
    "versionInfo",
    "tasksRunning",
    "tasksStaged",
    "tasksHealthy",
    "tasksUnhealthy",
    "deployments",
    "tasks",
    "lastTaskFailure",
    "readinessCheckResults",
    "taskStats",
];

/// Normalises an app id: absolute, no trailing slash.
pub fn normalize_id(id: &str) -> String {
    let trimmed = id.trim_matches('/');
    format!("/{trimmed}")
}

/// The deepest app id accepted: groups nest as deep as ids, and are walked recursively.
pub const MAX_ID_DEPTH: usize = 32;

fn id_is_valid(id: &str) -> bool {
    let body = id.trim_start_matches('/');
    !body.is_empty()
        && body.split('/').count() <= MAX_ID_DEPTH
        && body.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && segment.starts_with(|c: char| c.is_ascii_alphanumeric())
                && segment.ends_with(|c: char| c.is_ascii_alphanumeric())
        })
}

/// Parses a definition body. `path_id` is the id from the URL (PUT), which wins over the body's.
pub fn parse_definition(body: &[u8], path_id: Option<&str>) -> Result<Map<String, Value>, DefinitionError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| DefinitionError::Malformed(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(DefinitionError::Malformed("expected a JSON object".into()));
    };
    for field in READ_ONLY {
        map.remove(*field);
    }
    if let Some(id) = path_id {
        map.insert("id".into(), Value::String(normalize_id(id)));
    }
    Ok(map)
}

fn number(map: &Map<String, Value>, key: &str, default: f64, violations: &mut Vec<Violation>) -> f64 {
    match map.get(key) {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(default),
        Some(_) => {
            violations.push(Violation {
                path: format!("/{key}"),
                errors: vec!["error.expected.jsnumber".into()],
            });
            default
        }
    }
}

/// An int32 field at least `min` (Marathon's RAML types: `error.expected.int`, `error.min`).
fn integer(map: &Map<String, Value>, key: &str, default: f64, path: &str, min: f64, violations: &mut Vec<Violation>) -> f64 {
    let error = match map.get(key) {
        None | Some(Value::Null) => return default,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.fract() != 0.0 || x > f64::from(i32::MAX) || x < f64::from(i32::MIN) => "error.expected.int",
            Some(x) if x < min => "error.min",
            Some(x) => return x,
            None => "error.expected.int",
        },
        Some(_) => "error.expected.jsnumber",
    };
    violations.push(Violation {
        path: path.to_owned(),
        errors: vec![error.into()],
    });
    default
}

/// A port number: 0 (any) to 65535.
fn port(value: Option<&Value>, path: &str, violations: &mut Vec<Violation>) -> u64 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|p| p <= 65535) => n.as_u64().unwrap_or(0),
        Some(Value::Number(n)) => {
            let error = if n.as_f64().is_some_and(|x| x < 0.0) {
                "error.min"
            } else {
                "error.max"
            };
            violations.push(Violation {
                path: path.to_owned(),
                errors: vec![error.into()],
            });
            0
        }
        Some(_) => {
            violations.push(Violation {
                path: path.to_owned(),
                errors: vec!["error.expected.jsnumber".into()],
            });
            0
        }
    }
}

/// Checks a definition and reads the scheduler's view of it. Fails with every violation.
pub fn check(map: &Map<String, Value>) -> Result<AppSpec, DefinitionError> {
    let mut v = Vec::new();
    let id = match map.get("id").and_then(Value::as_str) {
        Some(id) if id_is_valid(id) => normalize_id(id),
        Some(id) if id.trim_matches('/').split('/').count() > MAX_ID_DEPTH => {
            v.push(Violation {
                path: "/id".into(),
                errors: vec![format!("must have at most {MAX_ID_DEPTH} path segments")],
            });
            String::new()
        }
        Some(_) => {
            v.push(Violation {
                path: "/id".into(),
                errors: vec!["must fully match regular expression '^(([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])\\.)*([a-z0-9]|[a-z0-9][a-z0-9\\-]*[a-z0-9])|(\\.|\\.\\.)$'".into()],
            });
            String::new()
        }
        None => {
            v.push(Violation {
                path: "/id".into(),
                errors: vec!["error.path.missing".into()],
            });
            String::new()
        }
    };
    let cmd = map.get("cmd").and_then(Value::as_str).map(str::to_owned);
    let args: Vec<String> = map
        .get("args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    // Both `cmd` and `args` (as the reference's own example has): `cmd` runs, as a shell command.
    if cmd.is_none() && args.is_empty() && map.get("container").is_none_or(Value::is_null) {
        v.push(Violation {
            path: "/".into(),
            errors: vec!["AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.".into()],
        });
    }
    let instances = integer(map, "instances", 1.0, "/instances", 0.0, &mut v);
    let cpus = number(map, "cpus", 1.0, &mut v);
    let mem = number(map, "mem", 128.0, &mut v);
    let disk = number(map, "disk", 0.0, &mut v);
    // app.raml: cpus at least 0.001 (a task of no cpu at all would fit any offer endlessly).
    if (0.0..0.001).contains(&cpus) {
        v.push(Violation {
            path: "/cpus".into(),
            errors: vec!["error.min".into()],
        });
    }
    for (key, value) in [("cpus", cpus), ("mem", mem), ("disk", disk)] {
        if value < 0.0 {
            v.push(Violation {
                path: format!("/{key}"),
                errors: vec!["got {value}, expected 0.0 or more".replace("{value}", &value.to_string())],
            });
        }
    }
    let backoff_secs = number(map, "backoffSeconds", 1.0, &mut v);
    let backoff_factor = number(map, "backoffFactor", 1.15, &mut v);
    let max_launch_delay_secs = integer(
        map,
        "maxLaunchDelaySeconds",
        super::wire::DEFAULT_MAX_LAUNCH_DELAY_SECONDS,
        "/maxLaunchDelaySeconds",
        0.0,
        &mut v,
    );
    if !(0.0..=f64::from(i32::MAX)).contains(&backoff_secs) {
        v.push(Violation {
            path: "/backoffSeconds".into(),
            errors: vec!["error.min".into()],
        });
    }
    if !(1.0..=1e6).contains(&backoff_factor) {
        v.push(Violation {
            path: "/backoffFactor".into(),
            errors: vec!["error.min".into()],
        });
    }
    for (key, value) in ["labels", "env"].iter().filter_map(|k| map.get(*k).map(|v| (*k, v))) {
        match value {
            Value::Null => {}
            Value::Object(entries) => {
                for (name, entry) in entries {
                    // env values may also be secret references (`{"secret": "name"}`).
                    let ok = entry.is_string() || (key == "env" && entry.get("secret").is_some_and(Value::is_string));
                    if !ok {
                        v.push(Violation {
                            path: format!("/{key}({name})"),
                            errors: vec!["error.expected.jsstring".into()],
                        });
                    }
                }
            }
            _ => v.push(Violation {
                path: format!("/{key}"),
                errors: vec!["error.expected.jsobject".into()],
            }),
        }
    }
    for key in ["args", "uris", "dependencies", "acceptedResourceRoles"] {
        match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
            Some(_) => v.push(Violation {
                path: format!("/{key}"),
                errors: vec!["error.expected.jsarray of strings".into()],
            }),
        }
    }
    for key in ["cmd", "user", "executor"] {
        if map.get(key).is_some_and(|c| !c.is_null() && !c.is_string()) {
            v.push(Violation {
                path: format!("/{key}"),
                errors: vec!["error.expected.jsstring".into()],
            });
        }
    }
    if map.get("requirePorts").is_some_and(|r| !r.is_null() && !r.is_boolean()) {
        v.push(Violation {
            path: "/requirePorts".into(),
            errors: vec!["error.expected.jsboolean".into()],
        });
    }
    if map.get("container").is_some_and(|c| !c.is_null() && !c.is_object()) {
        v.push(Violation {
            path: "/container".into(),
            errors: vec!["error.expected.jsobject".into()],
        });
    }

    let declared: Vec<u64> = match (map.get("portDefinitions"), map.get("ports")) {
        (Some(Value::Array(defs)), _) => defs
            .iter()
            .enumerate()
            .map(|(i, d)| port(d.get("port"), &format!("/portDefinitions({i})/port"), &mut v))
            .collect(),
        (Some(Value::Null) | None, Some(Value::Array(ports))) => ports
            .iter()
            .enumerate()
            .map(|(i, p)| port(Some(p), &format!("/ports({i})"), &mut v))
            .collect(),
        (Some(Value::Null) | None, Some(Value::Null) | None) if map.get("container").is_some_and(|c| !c.is_null()) => Vec::new(),
        (Some(Value::Null) | None, Some(Value::Null) | None) => vec![0],
        (Some(_), _) => {
            v.push(Violation {
                path: "/portDefinitions".into(),
                errors: vec!["error.expected.jsarray".into()],
            });
            Vec::new()
        }
        (_, Some(_)) => {
            v.push(Violation {
                path: "/ports".into(),
                errors: vec!["error.expected.jsarray".into()],
            });
            Vec::new()
        }
    };
    let require_ports = map.get("requirePorts").and_then(Value::as_bool).unwrap_or(false);
    let docker = super::container::parse(map, &mut v);
    // Declared ports are service ports; a task's host ports are only fixed with requirePorts.
    // A Docker app's published port mappings ask for their host ports (0: any) instead.
    let ports: Vec<u64> = match docker.as_ref().and_then(super::container::DockerSpec::requested_host_ports) {
        Some(host_ports) => host_ports,
        None if require_ports => declared.clone(),
        None => vec![0; declared.len()],
    };
    let kill_grace_secs = match map.get("taskKillGracePeriodSeconds") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => n.as_f64(),
        Some(_) => {
            v.push(Violation {
                path: "/taskKillGracePeriodSeconds".into(),
                errors: vec!["error.min".into()],
            });
            None
        }
    };

    let env = map
        .get("env")
        .and_then(Value::as_object)
        .map(|e| {
            e.iter()
                .filter_map(|(k, val)| val.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let mut uris: Vec<(String, bool, bool)> = map
        .get("uris")
        .and_then(Value::as_array)
        .map(|u| u.iter().filter_map(|s| s.as_str().map(|s| (s.to_owned(), false, true))).collect())
        .unwrap_or_default();
    if let Some(fetch) = map.get("fetch").and_then(Value::as_array) {
        for f in fetch {
            if let Some(uri) = f.get("uri").and_then(Value::as_str) {
                let executable = f.get("executable").and_then(Value::as_bool).unwrap_or(false);
                let extract = f.get("extract").and_then(Value::as_bool).unwrap_or(true);
                uris.push((uri.to_owned(), executable, extract));
            }
        }
    }

    let mut constraints = Vec::new();
    if let Some(list) = map.get("constraints").and_then(Value::as_array) {
        for (i, c) in list.iter().enumerate() {
            let parts: Vec<&str> = c
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let operator = match parts.get(1).copied() {
                Some("UNIQUE") => Some(Operator::Unique),
                Some("CLUSTER") => Some(Operator::Cluster),
                Some("GROUP_BY") => Some(Operator::GroupBy),
                Some("LIKE") => Some(Operator::Like),
                Some("UNLIKE") => Some(Operator::Unlike),
                Some("MAX_PER") => Some(Operator::MaxPer),
                _ => None,
            };
            let needs_value = matches!(
                operator,
                Some(Operator::Cluster | Operator::Like | Operator::Unlike | Operator::MaxPer)
            );
            match operator {
                Some(op) if parts.len() >= 2 && (!needs_value || parts.len() == 3) => {
                    let value = parts.get(2).map(|s| (*s).to_owned());
                    if matches!(op, Operator::Like | Operator::Unlike) && value.as_deref().is_some_and(|r| regex::Regex::new(r).is_err()) {
                        v.push(Violation {
                            path: format!("/constraints({i})"),
                            errors: vec!["Invalid regular expression".into()],
                        });
                    }
                    if op == Operator::MaxPer && value.as_deref().is_some_and(|n| n.parse::<u32>().is_err()) {
                        v.push(Violation {
                            path: format!("/constraints({i})"),
                            errors: vec!["MAX_PER takes a number".into()],
                        });
                    }
                    constraints.push(Constraint {
                        field: parts[0].to_owned(),
                        operator: op,
                        value,
                    });
                }
                _ => v.push(Violation {
                    path: format!("/constraints({i})"),
                    errors: vec!["Invalid constraint".into()],
                }),
            }
        }
    }

    let mut health_checks = Vec::new();
    if let Some(list) = map.get("healthChecks").and_then(Value::as_array) {
        for (i, hc) in list.iter().enumerate() {
            let protocol = match hc.get("protocol").and_then(Value::as_str).unwrap_or("HTTP") {
                "HTTP" | "MESOS_HTTP" | "HTTPS" | "MESOS_HTTPS" => Some(HealthProtocol::Http),
                "TCP" | "MESOS_TCP" => Some(HealthProtocol::Tcp),
                // Command checks run beside the task on the agent (sent in the TaskInfo).
                "COMMAND" => Some(HealthProtocol::Command),
                _ => {
                    v.push(Violation {
                        path: format!("/healthChecks({i})/protocol"),
                        errors: vec!["error.expected.validenumvalue".into()],
                    });
                    None
                }
            };
            let Some(hc) = hc.as_object() else {
                v.push(Violation {
                    path: format!("/healthChecks({i})"),
                    errors: vec!["error.expected.jsobject".into()],
                });
                continue;
            };
            let mut get = |key: &str, default: f64| integer(hc, key, default, &format!("/healthChecks({i})/{key}"), 0.0, &mut v);
            let grace_period_secs = get("gracePeriodSeconds", 300.0);
            let interval_secs = get("intervalSeconds", 60.0);
            let timeout_secs = get("timeoutSeconds", 20.0);
            let max_consecutive_failures = get("maxConsecutiveFailures", 3.0);
            let port_index = get("portIndex", 0.0) as usize;
            let delay_secs = get("delaySeconds", 15.0);
            let command = hc
                .get("command")
                .and_then(|c| c.get("value"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if protocol == Some(HealthProtocol::Command) && command.is_none() {
                v.push(Violation {
                    path: format!("/healthChecks({i})/command"),
                    errors: vec!["error.path.missing".into()],
                });
            }
            if let Some(protocol) = protocol {
                if protocol != HealthProtocol::Command && port_index >= ports.len().max(1) {
                    v.push(Violation {
                        path: format!("/healthChecks({i})/portIndex"),
                        errors: vec![
                            "Health check port indices must address an element of the ports array or container port mappings.".into(),
                        ],
                    });
                }
                health_checks.push(HealthCheck {
                    protocol,
                    command,
                    delay_secs,
                    path: hc.get("path").and_then(Value::as_str).unwrap_or("/").to_owned(),
                    port_index,
                    grace_period_secs,
                    // 0 would check in a busy loop; Marathon's own floor is one second.
                    interval_secs: interval_secs.max(1.0),
                    timeout_secs: timeout_secs.max(1.0),
                    max_consecutive_failures: max_consecutive_failures as u32,
                });
            }
        }
    }
    let upgrade = map.get("upgradeStrategy");
    let minimum_health_capacity = upgrade
        .and_then(|u| u.get("minimumHealthCapacity"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let maximum_over_capacity = upgrade
        .and_then(|u| u.get("maximumOverCapacity"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    for (key, value) in [
        ("minimumHealthCapacity", minimum_health_capacity),
        ("maximumOverCapacity", maximum_over_capacity),
    ] {
        if !(0.0..=1.0).contains(&value) {
            v.push(Violation {
                path: format!("/upgradeStrategy/{key}"),
                errors: vec!["got {value}, expected between 0.0 and 1.0".replace("{value}", &value.to_string())],
            });
        }
    }
    if !v.is_empty() {
        return Err(DefinitionError::Invalid(v));
    }
    Ok(AppSpec {
        id,
        instances: instances as u32,
        cmd,
        args,
        cpus,
        mem,
        disk,
        ports,
        require_ports,
        env,
        uris,
        constraints,
        health_checks,
        backoff_secs,
        backoff_factor,
        max_launch_delay_secs,
        minimum_health_capacity,
        maximum_over_capacity,
        docker,
        kill_grace_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_json(text: &str) -> Result<AppSpec, DefinitionError> {
        check(&parse_definition(text.as_bytes(), None)?)
    }

    #[test]
    fn every_reference_app_example_is_accepted() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/marathon/testdata");
        for name in ["app.json", "apps_create.json", "app-check-http-example.json", "app_list.json"] {
            let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            // A file holds one app, a list of apps, or `{"apps": [...]}`.
            let apps = match value {
                serde_json::Value::Array(list) => list,
                serde_json::Value::Object(ref map) if map.contains_key("apps") => map["apps"].as_array().unwrap().clone(),
                one => vec![one],
            };
            assert!(!apps.is_empty(), "{name}");
            for app in apps {
                let spec = check_json(&app.to_string()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert!(spec.id.starts_with('/'), "{name}");
            }
        }
        let seed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/marathon/testdata/seed_marathon_www.json")).unwrap();
        let spec = check_json(&seed).unwrap();
        assert!(!spec.uris.is_empty());
    }

    #[test]
    fn invalid_definitions_get_details_by_path() {
        let Err(DefinitionError::Invalid(details)) = check_json(r#"{"id":"/Bad_Id","instances":-1}"#) else {
            panic!()
        };
        let paths: Vec<&str> = details.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/id", "/", "/instances"]);
        assert!(matches!(check_json("{\"id\":"), Err(DefinitionError::Malformed(_))));
        let Err(DefinitionError::Invalid(details)) = check_json(r#"{"id":"/a","cmd":"x","constraints":[["zone","NEAR"]]}"#) else {
            panic!()
        };
        assert_eq!(details[0].path, "/constraints(0)");
    }

    #[test]
    fn defaults_follow_marathon() {
        let spec = check_json(r#"{"id":"shop/cart","cmd":"run"}"#).unwrap();
        assert_eq!(spec.id, "/shop/cart");
        assert_eq!((spec.instances, spec.cpus, spec.mem, spec.ports.len()), (1, 1.0, 128.0, 1));
    }
}

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

/// A health check of the scheduler's own (Marathon-side HTTP or TCP; COMMAND runs on the node).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub protocol: HealthProtocol,
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

fn id_is_valid(id: &str) -> bool {
    let body = id.trim_start_matches('/');
    !body.is_empty()
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

/// Checks a definition and reads the scheduler's view of it. Fails with every violation.
pub fn check(map: &Map<String, Value>) -> Result<AppSpec, DefinitionError> {
    let mut v = Vec::new();
    let id = match map.get("id").and_then(Value::as_str) {
        Some(id) if id_is_valid(id) => normalize_id(id),
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
    let instances = number(map, "instances", 1.0, &mut v);
    if instances < 0.0 || instances.fract() != 0.0 {
        v.push(Violation {
            path: "/instances".into(),
            errors: vec!["must be greater than or equal to 0".into()],
        });
    }
    let cpus = number(map, "cpus", 1.0, &mut v);
    let mem = number(map, "mem", 128.0, &mut v);
    let disk = number(map, "disk", 0.0, &mut v);
    for (key, value) in [("cpus", cpus), ("mem", mem), ("disk", disk)] {
        if value < 0.0 {
            v.push(Violation {
                path: format!("/{key}"),
                errors: vec!["got {value}, expected 0.0 or more".replace("{value}", &value.to_string())],
            });
        }
    }

    let ports: Vec<u64> = if let Some(defs) = map.get("portDefinitions").and_then(Value::as_array) {
        defs.iter().map(|d| d.get("port").and_then(Value::as_u64).unwrap_or(0)).collect()
    } else if let Some(ports) = map.get("ports").and_then(Value::as_array) {
        ports.iter().map(|p| p.as_u64().unwrap_or(0)).collect()
    } else if map.get("container").is_some_and(|c| !c.is_null()) {
        Vec::new()
    } else {
        // Marathon's default for an app that says nothing: one port, any.
        vec![0]
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
                // Command checks run beside the task on the agent; this scheduler has no executor
                // to run them, so it leaves such tasks without health results.
                "COMMAND" => None,
                _ => {
                    v.push(Violation {
                        path: format!("/healthChecks({i})/protocol"),
                        errors: vec!["error.expected.validenumvalue".into()],
                    });
                    None
                }
            };
            let get = |key: &str, default: f64| hc.get(key).and_then(Value::as_f64).unwrap_or(default);
            let port_index = hc.get("portIndex").and_then(Value::as_u64).unwrap_or(0) as usize;
            if let Some(protocol) = protocol {
                if port_index >= ports.len().max(1) {
                    v.push(Violation {
                        path: format!("/healthChecks({i})/portIndex"),
                        errors: vec![
                            "Health check port indices must address an element of the ports array or container port mappings.".into(),
                        ],
                    });
                }
                health_checks.push(HealthCheck {
                    protocol,
                    path: hc.get("path").and_then(Value::as_str).unwrap_or("/").to_owned(),
                    port_index,
                    grace_period_secs: get("gracePeriodSeconds", 300.0),
                    interval_secs: get("intervalSeconds", 60.0).max(0.1),
                    timeout_secs: get("timeoutSeconds", 20.0).max(0.1),
                    max_consecutive_failures: get("maxConsecutiveFailures", 3.0) as u32,
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
        require_ports: map.get("requirePorts").and_then(Value::as_bool).unwrap_or(false),
        env,
        uris,
        constraints,
        health_checks,
        backoff_secs: map.get("backoffSeconds").and_then(Value::as_f64).unwrap_or(1.0),
        backoff_factor: map.get("backoffFactor").and_then(Value::as_f64).unwrap_or(1.15),
        max_launch_delay_secs: map.get("maxLaunchDelaySeconds").and_then(Value::as_f64).unwrap_or(3600.0),
        minimum_health_capacity,
        maximum_over_capacity,
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

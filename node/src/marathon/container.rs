//! Docker apps: an app's `container` of type DOCKER, read as Marathon 1.x reads it, and turned
//! into the Mesos ContainerInfo of its tasks.
//!
//! Both forms of Marathon's app JSON are read (docs/docs/native-docker.md, `docker.raml`):
//! - the legacy one: `container.docker.network` (`HOST`, `BRIDGE`, `USER`) and
//!   `container.docker.portMappings`;
//! - the 1.5+ one: top-level `networks` (`[{"mode": "host"}]`, `[{"mode":
//!   "container/bridge"}]`, `[{"mode": "container", "name": ...}]`) and
//!   `container.portMappings`.
//!
//! A port mapping's `hostPort` is taken from the offer (0, and the default in BRIDGE
//! networking, means any offered port); its `servicePort` is allocated as Marathon allocates
//! service ports (see `wire::normalize`). The task's `ports` are the host ports of the
//! mappings that have one, in order, so a health check's `portIndex` resolves through the
//! port mappings.

use serde_json::{Map, Value};

use super::app::Violation;
use crate::mesos::v1;

/// How a Docker app's tasks are networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The agent's network namespace: the task binds its offered ports (`$PORT0`...).
    Host,
    /// A bridge network: each port mapping's container port is reached at the agent's
    /// address and the mapping's host port.
    Bridge,
    /// A named (user) network; mappings without a host port are not published.
    User(Option<String>),
}

/// One `portMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub container_port: u64,
    /// `None`: not published on the agent (USER networking without a host port).
    pub host_port: Option<u64>,
    pub service_port: u64,
    pub protocol: String,
    pub name: Option<String>,
}

/// A host-path volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

/// What the scheduler needs of a DOCKER container.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSpec {
    pub image: String,
    pub network: Network,
    pub port_mappings: Vec<PortMapping>,
    pub privileged: bool,
    pub parameters: Vec<(String, String)>,
    pub force_pull_image: bool,
    pub volumes: Vec<Volume>,
}

impl DockerSpec {
    /// The requested host ports (0: any) of the mappings that are published, in order: the
    /// app's `ports` for placement. `None` in HOST networking, whose ports are the app's port
    /// definitions.
    pub fn requested_host_ports(&self) -> Option<Vec<u64>> {
        (self.network != Network::Host).then(|| self.port_mappings.iter().filter_map(|m| m.host_port).collect())
    }
}

/// The port mappings of a container JSON, wherever they are (`container.portMappings`, else
/// `container.docker.portMappings`), for reading and for assigning service ports.
pub fn port_mappings_mut(container: &mut Value) -> Option<&mut Vec<Value>> {
    if container.get("portMappings").is_some_and(Value::is_array) {
        return container.get_mut("portMappings").and_then(Value::as_array_mut);
    }
    container
        .get_mut("docker")
        .and_then(|d| d.get_mut("portMappings"))
        .and_then(Value::as_array_mut)
}

/// Fills the defaults Marathon shows in a DOCKER container (`docker.raml`): `type`,
/// `volumes`, the docker `privileged`, `parameters` and `forcePullImage`, and each port
/// mapping's `protocol` and `labels` (and `hostPort` 0 where it means "any"). Only absent keys
/// are filled, so doing it again changes nothing. A MESOS container is left as it is.
pub fn fill_defaults(container: &mut Value, bridge_networks: bool) {
    let Some(object) = container.as_object_mut() else { return };
    if object.get("type").and_then(Value::as_str).unwrap_or("DOCKER") != "DOCKER" {
        return;
    }
    let default = |object: &mut Map<String, Value>, key: &str, value: Value| {
        if object.get(key).is_none_or(Value::is_null) {
            object.insert(key.into(), value);
        }
    };
    default(object, "type", "DOCKER".into());
    default(object, "volumes", Value::Array(Vec::new()));
    let legacy_bridge = object
        .get("docker")
        .and_then(|d| d.get("network"))
        .and_then(Value::as_str)
        .is_some_and(|n| n == "BRIDGE");
    if let Some(docker) = object.get_mut("docker").and_then(Value::as_object_mut) {
        default(docker, "privileged", false.into());
        default(docker, "parameters", Value::Array(Vec::new()));
        default(docker, "forcePullImage", false.into());
    }
    let publish_all = legacy_bridge || bridge_networks;
    for mapping in port_mappings_mut(container).into_iter().flatten() {
        let Some(mapping) = mapping.as_object_mut() else { continue };
        default(mapping, "protocol", "tcp".into());
        default(mapping, "labels", Value::Object(Map::new()));
        if publish_all {
            default(mapping, "hostPort", 0.into());
        }
    }
}

fn port_mappings(container: &Value) -> Option<&Vec<Value>> {
    container.get("portMappings").and_then(Value::as_array).or_else(|| {
        container
            .get("docker")
            .and_then(|d| d.get("portMappings"))
            .and_then(Value::as_array)
    })
}

fn network(map: &Map<String, Value>, docker: &Value, violations: &mut Vec<Violation>) -> Network {
    if let Some(first) = map.get("networks").and_then(Value::as_array).and_then(|n| n.first()) {
        return match first.get("mode").and_then(Value::as_str).unwrap_or("container") {
            "host" => Network::Host,
            "container/bridge" => Network::Bridge,
            "container" => Network::User(first.get("name").and_then(Value::as_str).map(str::to_owned)),
            other => {
                violations.push(Violation {
                    path: "/networks(0)/mode".into(),
                    errors: vec![format!("error.expected.validenumvalue: {other}")],
                });
                Network::Host
            }
        };
    }
    match docker.get("network").and_then(Value::as_str) {
        None | Some("HOST") => Network::Host,
        Some("BRIDGE") => Network::Bridge,
        Some("USER") => Network::User(None),
        Some(other) => {
            violations.push(Violation {
                path: "/container/docker/network".into(),
                errors: vec![format!("error.expected.validenumvalue: {other}")],
            });
            Network::Host
        }
    }
}

/// Reads a DOCKER container; `None` for no container or a MESOS one (which runs `cmd` as a
/// command task). Problems are pushed as Marathon's 422 details.
pub fn parse(map: &Map<String, Value>, violations: &mut Vec<Violation>) -> Option<DockerSpec> {
    let container = map.get("container").filter(|c| c.is_object())?;
    if container.get("type").and_then(Value::as_str).unwrap_or("DOCKER") != "DOCKER" {
        return None;
    }
    let docker = container.get("docker").cloned().unwrap_or(Value::Null);
    let image = match docker.get("image").and_then(Value::as_str) {
        Some(image) if !image.trim().is_empty() => image.to_owned(),
        _ => {
            violations.push(Violation {
                path: "/container/docker/image".into(),
                errors: vec!["error.path.missing".into()],
            });
            String::new()
        }
    };
    let network = network(map, &docker, violations);
    let mut mappings = Vec::new();
    for (i, mapping) in port_mappings(container).into_iter().flatten().enumerate() {
        let number = |key: &str| mapping.get(key).and_then(Value::as_u64);
        let Some(container_port) = number("containerPort").filter(|p| *p <= 65535) else {
            violations.push(Violation {
                path: format!("/container/portMappings({i})/containerPort"),
                errors: vec!["error.path.missing".into()],
            });
            continue;
        };
        let host_port = match (number("hostPort"), &network) {
            (Some(p), _) if p > 65535 => {
                violations.push(Violation {
                    path: format!("/container/portMappings({i})/hostPort"),
                    errors: vec!["error.max".into()],
                });
                None
            }
            (Some(p), _) => Some(p),
            // BRIDGE publishes every mapping (any port by default); USER only those asked.
            (None, Network::User(_)) => None,
            (None, _) => Some(0),
        };
        mappings.push(PortMapping {
            container_port,
            host_port,
            service_port: number("servicePort").unwrap_or(0),
            protocol: mapping.get("protocol").and_then(Value::as_str).unwrap_or("tcp").to_owned(),
            name: mapping.get("name").and_then(Value::as_str).map(str::to_owned),
        });
    }
    let volumes = container
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some(Volume {
                container_path: v.get("containerPath")?.as_str()?.to_owned(),
                host_path: v.get("hostPath")?.as_str()?.to_owned(),
                read_only: v.get("mode").and_then(Value::as_str) == Some("RO"),
            })
        })
        .collect();
    Some(DockerSpec {
        image,
        network,
        port_mappings: mappings,
        privileged: docker.get("privileged").and_then(Value::as_bool).unwrap_or(false),
        parameters: docker
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get("key")?.as_str()?.to_owned(), p.get("value")?.as_str()?.to_owned())))
            .collect(),
        force_pull_image: docker.get("forcePullImage").and_then(Value::as_bool).unwrap_or(false),
        volumes,
    })
}

/// The Mesos ContainerInfo of a task, its published mappings given the host ports taken from
/// the offer (in the order of [`DockerSpec::requested_host_ports`]).
pub fn container_info(spec: &DockerSpec, host_ports: &[u64]) -> v1::ContainerInfo {
    let network = match spec.network {
        Network::Host => v1::DockerNetwork::Host,
        Network::Bridge => v1::DockerNetwork::Bridge,
        Network::User(_) => v1::DockerNetwork::User,
    };
    let port_mappings = if spec.network == Network::Host {
        Vec::new()
    } else {
        spec.port_mappings
            .iter()
            .filter(|m| m.host_port.is_some())
            .zip(host_ports)
            .flat_map(|(m, &host)| {
                // "udp,tcp" maps both protocols, as Marathon's PortMappingSerializer does.
                m.protocol.split(',').map(move |protocol| v1::DockerPortMapping {
                    host_port: host as u32,
                    container_port: m.container_port as u32,
                    protocol: Some(protocol.trim().to_owned()),
                })
            })
            .collect()
    };
    v1::ContainerInfo {
        kind: v1::ContainerType::Docker,
        volumes: spec
            .volumes
            .iter()
            .map(|v| v1::Volume {
                container_path: v.container_path.clone(),
                host_path: Some(v.host_path.clone()),
                mode: if v.read_only { v1::VolumeMode::Ro } else { v1::VolumeMode::Rw },
                ..Default::default()
            })
            .collect(),
        docker: Some(v1::DockerInfo {
            image: spec.image.clone(),
            network,
            port_mappings,
            privileged: spec.privileged,
            parameters: spec
                .parameters
                .iter()
                .map(|(key, value)| v1::Parameter {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect(),
            force_pull_image: spec.force_pull_image,
        }),
        network_infos: match &spec.network {
            Network::User(Some(name)) => vec![v1::NetworkInfo { name: Some(name.clone()) }],
            _ => Vec::new(),
        },
        hostname: None,
    }
}

/// Marathon's port variables for published mappings (`EnvironmentHelper.portsEnv`):
/// `PORT_<containerPort>` and `PORT_<NAME>` → the host port.
pub fn ports_env(spec: &DockerSpec, host_ports: &[u64]) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (mapping, host) in spec.port_mappings.iter().filter(|m| m.host_port.is_some()).zip(host_ports) {
        env.push((format!("PORT_{}", mapping.container_port), host.to_string()));
        if let Some(name) = &mapping.name {
            env.push((format!("PORT_{}", name.to_uppercase()), host.to_string()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> (Option<DockerSpec>, Vec<Violation>) {
        let map: Map<String, Value> = serde_json::from_str(json).unwrap();
        let mut violations = Vec::new();
        (parse(&map, &mut violations), violations)
    }

    #[test]
    fn the_legacy_and_the_networks_forms_read_alike() {
        let (legacy, problems) = read(
            r#"{"container":{"type":"DOCKER","docker":{"image":"web:1","network":"BRIDGE",
                "portMappings":[{"containerPort":8080,"hostPort":0,"servicePort":10001,"name":"http"}]}}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let (current, problems) = read(
            r#"{"networks":[{"mode":"container/bridge"}],"container":{"type":"DOCKER","docker":{"image":"web:1"},
                "portMappings":[{"containerPort":8080,"servicePort":10001,"name":"http"}]}}"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(legacy, current);
        let spec = legacy.unwrap();
        assert_eq!(spec.network, Network::Bridge);
        assert_eq!(spec.requested_host_ports(), Some(vec![0]));
    }

    #[test]
    fn a_task_gets_its_offered_host_ports_in_its_container_info_and_environment() {
        let (spec, _) = read(
            r#"{"container":{"docker":{"image":"web:1","network":"BRIDGE",
                "portMappings":[{"containerPort":80,"name":"http"},{"containerPort":53,"hostPort":0,"protocol":"udp,tcp"}]}}}"#,
        );
        let spec = spec.unwrap();
        let info = container_info(&spec, &[31001, 31002]);
        let docker = info.docker.unwrap();
        assert_eq!(docker.network, v1::DockerNetwork::Bridge);
        let mapped: Vec<(u32, u32, String)> = docker
            .port_mappings
            .iter()
            .map(|m| (m.host_port, m.container_port, m.protocol.clone().unwrap()))
            .collect();
        assert_eq!(
            mapped,
            [(31001, 80, "tcp".into()), (31002, 53, "udp".into()), (31002, 53, "tcp".into())]
        );
        assert_eq!(
            ports_env(&spec, &[31001, 31002]),
            [
                ("PORT_80".to_owned(), "31001".to_owned()),
                ("PORT_HTTP".to_owned(), "31001".to_owned()),
                ("PORT_53".to_owned(), "31002".to_owned())
            ]
        );
    }

    #[test]
    fn marathons_defaults_are_filled_once() {
        let mut container: Value =
            serde_json::from_str(r#"{"docker":{"image":"web:1","network":"BRIDGE","portMappings":[{"containerPort":80}]}}"#).unwrap();
        fill_defaults(&mut container, false);
        let expected: Value = serde_json::from_str(
            r#"{"type":"DOCKER","volumes":[],"docker":{"image":"web:1","network":"BRIDGE","privileged":false,
                "parameters":[],"forcePullImage":false,
                "portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp","labels":{}}]}}"#,
        )
        .unwrap();
        assert_eq!(container, expected);
        fill_defaults(&mut container, false);
        assert_eq!(container, expected, "filling again changes nothing");
        let mut mesos: Value = serde_json::from_str(r#"{"type":"MESOS"}"#).unwrap();
        fill_defaults(&mut mesos, false);
        assert_eq!(mesos, serde_json::json!({"type": "MESOS"}));
    }

    #[test]
    fn host_networking_uses_the_port_definitions_and_a_missing_image_is_a_violation() {
        let (spec, _) = read(r#"{"container":{"type":"DOCKER","docker":{"image":"web:1"}}}"#);
        assert_eq!(spec.unwrap().requested_host_ports(), None);
        let (_, problems) = read(r#"{"container":{"type":"DOCKER","docker":{}}}"#);
        assert_eq!(problems[0].path, "/container/docker/image");
        let (mesos, _) = read(r#"{"container":{"type":"MESOS"}}"#);
        assert!(mesos.is_none());
    }
}

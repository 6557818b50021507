//! What `docker run` a task gets, decided before anything touches Docker: the container's name
//! and labels, image, entrypoint and command, environment, limits, network and volumes, and the
//! host ports the agent forwards. Pure, so every rule is checked without an engine.
//!
//! Follows Mesos' `Docker::RunOptions::create` (`src/docker/docker.cpp`): a shell command
//! overrides the image's entrypoint with `/bin/sh -c <value>`; otherwise the value and the
//! arguments replace the image's command and its entrypoint stays; `cpus × 1024` CPU shares
//! (at least 2); `mem` MB of memory (at least 32 MB); each `parameters` entry as `--key=value`.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig};

use crate::mesos::resources::Resources;
use crate::mesos::v1::{self, ContainerInfo, DockerInfo, DockerNetwork, VolumeMode};

/// Mesos' `DOCKER_NAME_PREFIX`: a task container is `mesos-<container id>`.
pub const NAME_PREFIX: &str = "mesos-";

/// The label naming the agent (its `--hostname`) that owns a task container; the agent only
/// ever touches containers carrying its own.
pub const AGENT_LABEL: &str = "paas.agent";
/// Labels naming what a task container runs.
pub const AGENT_ID_LABEL: &str = "mesos.agent_id";
pub const FRAMEWORK_ID_LABEL: &str = "mesos.framework_id";
pub const TASK_ID_LABEL: &str = "mesos.task_id";
pub const CONTAINER_ID_LABEL: &str = "mesos.container_id";

/// Mesos' `CPU_SHARES_PER_CPU` and `MIN_CPU_SHARES`.
const CPU_SHARES_PER_CPU: f64 = 1024.0;
const MIN_CPU_SHARES: i64 = 2;
/// Mesos' `MIN_MEMORY` for a container, in bytes.
const MIN_MEMORY_BYTES: i64 = 32 * 1024 * 1024;

/// Why a task's ContainerInfo cannot be run as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("the DOCKER container has no docker info (docker.image)")]
    NoDockerInfo,
    #[error("Shell specified but no command value provided")]
    ShellWithoutValue,
    #[error("unsupported docker parameter '{key}' (supported: {supported})")]
    UnsupportedParameter { key: String, supported: String },
    #[error("docker parameter '{key}' has an invalid value '{value}': {why}")]
    BadParameter { key: String, value: String, why: String },
    #[error("volume at '{container_path}': only host-path volumes are supported by this agent")]
    UnsupportedVolume { container_path: String },
    #[error("docker network {0:?} is not supported (HOST, BRIDGE or USER)")]
    UnsupportedNetwork(DockerNetwork),
    #[error("port mapping {container_port} needs a host port from the task's resources, got {host_port}")]
    HostPortNotOffered { container_port: u32, host_port: u32 },
}

/// Who runs the task and where: the agent's side of the plan.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The agent's `--hostname` (the `paas.agent` label).
    pub agent: &'a str,
    pub agent_id: &'a str,
    pub framework_id: &'a str,
    /// The sandbox's run id, Mesos' container id.
    pub container_id: &'a str,
    pub sandbox: &'a Path,
    /// `--docker_network`: what BRIDGE tasks join.
    pub bridge_network: &'a str,
    /// `--docker_host_network`: the network mode of HOST tasks.
    pub host_network: &'a str,
    /// `--docker_task_labels`.
    pub extra_labels: &'a [(String, String)],
    /// The environment Mesos' executor gives, before the task's own variables.
    pub environment: Vec<(String, String)>,
}

/// A host port the agent forwards to the container (BRIDGE and USER networking).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    pub host_port: u16,
    pub container_port: u16,
}

/// Everything needed to create, start and serve one task container.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub name: String,
    pub image: String,
    pub force_pull: bool,
    pub body: ContainerCreateBody,
    /// The network whose address the forwards target; `None` for HOST networking.
    pub network: Option<String>,
    pub forwards: Vec<Forward>,
}

/// The container name of a container id.
pub fn container_name(container_id: &str) -> String {
    format!("{NAME_PREFIX}{container_id}")
}

/// The `docker run` of a task. Fails naming what cannot be run as asked.
pub fn plan(info: &v1::TaskInfo, container: &ContainerInfo, at: &Placement<'_>) -> Result<RunPlan, OptionsError> {
    let docker = container.docker.as_ref().ok_or(OptionsError::NoDockerInfo)?;
    let command = info.command.clone().unwrap_or_default();
    let (entrypoint, cmd) = command_line(&command)?;

    let mut env: Vec<(String, String)> = at.environment.clone();
    env.push(("MESOS_CONTAINER_NAME".into(), container_name(at.container_id)));
    for variable in command.environment.iter().flat_map(|e| e.variables.iter()) {
        env.push((variable.name.clone(), variable.value.clone().unwrap_or_default()));
    }
    let mut labels: HashMap<String, String> = HashMap::new();
    let mut host = HostConfig::default();
    let mut body = ContainerCreateBody::default();

    let resources = Resources::from_v1(&info.resources);
    let cpus = resources.scalar("cpus");
    if cpus > 0.0 {
        host.cpu_shares = Some(((cpus * CPU_SHARES_PER_CPU) as i64).max(MIN_CPU_SHARES));
    }
    let mem = resources.scalar("mem");
    if mem > 0.0 {
        host.memory = Some(((mem as i64) * 1024 * 1024).max(MIN_MEMORY_BYTES));
    }
    host.privileged = Some(docker.privileged);

    let mut network_mode = match docker.network {
        DockerNetwork::Host => at.host_network.to_owned(),
        DockerNetwork::Bridge => at.bridge_network.to_owned(),
        DockerNetwork::User => container
            .network_infos
            .iter()
            .find_map(|n| n.name.clone())
            .unwrap_or_else(|| at.bridge_network.to_owned()),
        other => return Err(OptionsError::UnsupportedNetwork(other)),
    };
    let mut binds = volumes(container, at.sandbox)?;
    let mut entrypoint = entrypoint;
    apply_parameters(
        docker,
        &mut env,
        &mut labels,
        &mut binds,
        &mut host,
        &mut body,
        &mut network_mode,
        &mut entrypoint,
    )?;

    let forwards = if docker.network == DockerNetwork::Host {
        Vec::new()
    } else {
        let offered: Vec<u64> = resources.range_set("ports").values().collect();
        docker
            .port_mappings
            .iter()
            .filter(|m| m.protocol.as_deref().is_none_or(|p| p.eq_ignore_ascii_case("tcp")))
            .map(|m| match (u16::try_from(m.host_port), u16::try_from(m.container_port)) {
                (Ok(host_port), Ok(container_port)) if offered.contains(&u64::from(m.host_port)) && host_port != 0 => {
                    Ok(Forward { host_port, container_port })
                }
                _ => Err(OptionsError::HostPortNotOffered {
                    container_port: m.container_port,
                    host_port: m.host_port,
                }),
            })
            .collect::<Result<_, _>>()?
    };

    // The agent's own labels come last: a parameter cannot disown a container.
    for (key, value) in at.extra_labels {
        labels.insert(key.clone(), value.clone());
    }
    labels.insert(AGENT_LABEL.into(), at.agent.into());
    labels.insert(AGENT_ID_LABEL.into(), at.agent_id.into());
    labels.insert(FRAMEWORK_ID_LABEL.into(), at.framework_id.into());
    labels.insert(TASK_ID_LABEL.into(), info.task_id.value.clone());
    labels.insert(CONTAINER_ID_LABEL.into(), at.container_id.into());

    let network = (docker.network != DockerNetwork::Host).then(|| network_mode.clone());
    host.network_mode = Some(network_mode);
    host.binds = (!binds.is_empty()).then_some(binds);
    body.image = Some(docker.image.clone());
    body.entrypoint = entrypoint;
    body.cmd = cmd;
    body.env = Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect());
    body.labels = Some(labels);
    body.host_config = Some(host);
    Ok(RunPlan {
        name: container_name(at.container_id),
        image: docker.image.clone(),
        force_pull: docker.force_pull_image,
        body,
        network,
        forwards,
    })
}

/// Entrypoint and command as Mesos sets them.
#[allow(clippy::type_complexity)]
fn command_line(command: &v1::CommandInfo) -> Result<(Option<Vec<String>>, Option<Vec<String>>), OptionsError> {
    if command.shell.unwrap_or(true) {
        let value = command.value.clone().ok_or(OptionsError::ShellWithoutValue)?;
        return Ok((Some(vec!["/bin/sh".into()]), Some(vec!["-c".into(), value])));
    }
    let mut cmd: Vec<String> = command.value.iter().cloned().collect();
    cmd.extend(command.arguments.iter().cloned());
    Ok((None, (!cmd.is_empty()).then_some(cmd)))
}

/// Host-path volumes as binds; a relative host path is inside the sandbox (created if missing).
fn volumes(container: &ContainerInfo, sandbox: &Path) -> Result<Vec<String>, OptionsError> {
    container
        .volumes
        .iter()
        .map(|volume| {
            let host_path = match (&volume.host_path, &volume.image, &volume.source) {
                (Some(path), None, None) => path,
                _ => {
                    return Err(OptionsError::UnsupportedVolume {
                        container_path: volume.container_path.clone(),
                    });
                }
            };
            let host = if Path::new(host_path).is_absolute() {
                host_path.clone()
            } else {
                sandbox.join(host_path).display().to_string()
            };
            let mode = match volume.mode {
                VolumeMode::Rw => "rw",
                VolumeMode::Ro => "ro",
            };
            Ok(format!("{host}:{}:{mode}", volume.container_path))
        })
        .collect()
}

/// The `docker run` options a `parameters` entry may name.
const SUPPORTED_PARAMETERS: &[&str] = &[
    "env",
    "e",
    "label",
    "l",
    "volume",
    "v",
    "user",
    "u",
    "workdir",
    "w",
    "hostname",
    "h",
    "entrypoint",
    "net",
    "network",
    "cap-add",
    "cap-drop",
    "dns",
    "dns-search",
    "dns-opt",
    "dns-option",
    "add-host",
    "tmpfs",
    "security-opt",
    "sysctl",
    "init",
    "read-only",
    "stop-signal",
    "oom-score-adj",
    "pids-limit",
    "shm-size",
];

/// Maps `DockerInfo.parameters` onto the container's configuration; an option this agent does
/// not know fails the task naming it (running without it could break what the app relies on).
#[allow(clippy::too_many_arguments)]
fn apply_parameters(
    docker: &DockerInfo,
    env: &mut Vec<(String, String)>,
    labels: &mut HashMap<String, String>,
    binds: &mut Vec<String>,
    host: &mut HostConfig,
    body: &mut ContainerCreateBody,
    network_mode: &mut String,
    entrypoint: &mut Option<Vec<String>>,
) -> Result<(), OptionsError> {
    let mut network_set = false;
    for parameter in &docker.parameters {
        let (key, value) = (parameter.key.as_str(), parameter.value.clone());
        let bad = |why: &str| OptionsError::BadParameter {
            key: key.to_owned(),
            value: value.clone(),
            why: why.to_owned(),
        };
        let boolean = || match value.as_str() {
            "" | "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(bad("expected true or false")),
        };
        let number = || value.parse::<i64>().map_err(|_| bad("expected a whole number"));
        match key {
            "env" | "e" => match value.split_once('=') {
                Some((k, v)) => env.push((k.to_owned(), v.to_owned())),
                None => env.push((value.clone(), std::env::var(&value).unwrap_or_default())),
            },
            "label" | "l" => {
                let (k, v) = value.split_once('=').unwrap_or((value.as_str(), ""));
                labels.insert(k.to_owned(), v.to_owned());
            }
            "volume" | "v" => binds.push(value.clone()),
            "user" | "u" => body.user = Some(value.clone()),
            "workdir" | "w" => body.working_dir = Some(value.clone()),
            "hostname" | "h" => body.hostname = Some(value.clone()),
            "entrypoint" => *entrypoint = Some(vec![value.clone()]),
            // As Mesos: the first `net`/`network` parameter wins over the DockerInfo network.
            "net" | "network" if !network_set => {
                *network_mode = value.clone();
                network_set = true;
            }
            "net" | "network" => {}
            "cap-add" => host.cap_add.get_or_insert_with(Vec::new).push(value.clone()),
            "cap-drop" => host.cap_drop.get_or_insert_with(Vec::new).push(value.clone()),
            "dns" => host.dns.get_or_insert_with(Vec::new).push(value.clone()),
            "dns-search" => host.dns_search.get_or_insert_with(Vec::new).push(value.clone()),
            "dns-opt" | "dns-option" => host.dns_options.get_or_insert_with(Vec::new).push(value.clone()),
            "add-host" => host.extra_hosts.get_or_insert_with(Vec::new).push(value.clone()),
            "tmpfs" => {
                let (path, options) = value.split_once(':').unwrap_or((value.as_str(), ""));
                host.tmpfs
                    .get_or_insert_with(HashMap::new)
                    .insert(path.to_owned(), options.to_owned());
            }
            "security-opt" => host.security_opt.get_or_insert_with(Vec::new).push(value.clone()),
            "sysctl" => {
                let (k, v) = value.split_once('=').ok_or_else(|| bad("expected name=value"))?;
                host.sysctls.get_or_insert_with(HashMap::new).insert(k.to_owned(), v.to_owned());
            }
            "init" => host.init = Some(boolean()?),
            "read-only" => host.readonly_rootfs = Some(boolean()?),
            "stop-signal" => body.stop_signal = Some(value.clone()),
            "oom-score-adj" => host.oom_score_adj = Some(number()?),
            "pids-limit" => host.pids_limit = Some(number()?),
            "shm-size" => host.shm_size = Some(bytes(&value).ok_or_else(|| bad("expected a size such as 64m"))?),
            _ => {
                return Err(OptionsError::UnsupportedParameter {
                    key: key.to_owned(),
                    supported: SUPPORTED_PARAMETERS.join(", "),
                });
            }
        }
    }
    Ok(())
}

/// A size as `docker run` writes it: `64m`, `1g`, `512k`, or bytes.
fn bytes(text: &str) -> Option<i64> {
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text.as_str(), ""),
    };
    let n: i64 = digits.parse().ok()?;
    let factor = match unit.trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos::v1::{DockerPortMapping, Parameter, Volume};

    fn task(resources: &str, command: v1::CommandInfo) -> v1::TaskInfo {
        v1::TaskInfo {
            name: "web".into(),
            task_id: v1::Id::new("web.1"),
            resources: Resources::parse(resources).unwrap().to_v1(None),
            command: Some(command),
            ..Default::default()
        }
    }

    /// A task that runs the image's own command: no shell, nothing of its own to run.
    fn image_task(resources: &str) -> v1::TaskInfo {
        task(
            resources,
            v1::CommandInfo {
                shell: Some(false),
                ..Default::default()
            },
        )
    }

    fn container(network: DockerNetwork, mappings: Vec<DockerPortMapping>) -> ContainerInfo {
        ContainerInfo {
            kind: v1::ContainerType::Docker,
            docker: Some(DockerInfo {
                image: "app:1".into(),
                network,
                port_mappings: mappings,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn at<'a>(sandbox: &'a Path, extra: &'a [(String, String)]) -> Placement<'a> {
        Placement {
            agent: "slave-1",
            agent_id: "S1",
            framework_id: "F1",
            container_id: "c0ffee",
            sandbox,
            bridge_network: "tasks-net",
            host_network: "container:slave-1",
            extra_labels: extra,
            environment: vec![("HOST".into(), "slave-1".into())],
        }
    }

    #[test]
    fn a_bridge_task_is_named_labelled_limited_and_forwarded() {
        let extra = [("paas.task.cluster".to_owned(), "c".to_owned())];
        let info = image_task("cpus:0.5;mem:64;ports:[31005-31005]");
        let mapping = DockerPortMapping {
            host_port: 31005,
            container_port: 8080,
            protocol: Some("tcp".into()),
        };
        let plan = plan(
            &info,
            &container(DockerNetwork::Bridge, vec![mapping]),
            &at(Path::new("/sb"), &extra),
        )
        .unwrap();
        assert_eq!(plan.name, "mesos-c0ffee");
        let labels = plan.body.labels.as_ref().unwrap();
        for (key, value) in [
            ("paas.agent", "slave-1"),
            ("mesos.agent_id", "S1"),
            ("mesos.framework_id", "F1"),
            ("mesos.task_id", "web.1"),
            ("mesos.container_id", "c0ffee"),
            ("paas.task.cluster", "c"),
        ] {
            assert_eq!(labels.get(key).map(String::as_str), Some(value), "{key}");
        }
        let host = plan.body.host_config.as_ref().unwrap();
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.memory, Some(64 * 1024 * 1024));
        assert_eq!(host.network_mode.as_deref(), Some("tasks-net"));
        assert_eq!(plan.network.as_deref(), Some("tasks-net"));
        assert_eq!(
            plan.forwards,
            [Forward {
                host_port: 31005,
                container_port: 8080
            }]
        );
        // No command: the image's entrypoint and command run.
        assert_eq!((plan.body.entrypoint.clone(), plan.body.cmd.clone()), (None, None));
    }

    #[test]
    fn a_shell_command_overrides_the_entrypoint_and_host_tasks_share_the_agents_network() {
        let info = task(
            "cpus:0.001;mem:1",
            v1::CommandInfo {
                value: Some("exit 3".into()),
                ..Default::default()
            },
        );
        let plan = plan(&info, &container(DockerNetwork::Host, vec![]), &at(Path::new("/sb"), &[])).unwrap();
        assert_eq!(plan.body.entrypoint, Some(vec!["/bin/sh".to_owned()]));
        assert_eq!(plan.body.cmd, Some(vec!["-c".to_owned(), "exit 3".to_owned()]));
        let host = plan.body.host_config.as_ref().unwrap();
        assert_eq!((host.cpu_shares, host.memory), (Some(2), Some(32 * 1024 * 1024)));
        assert_eq!(host.network_mode.as_deref(), Some("container:slave-1"));
        assert!(plan.network.is_none() && plan.forwards.is_empty());
    }

    #[test]
    fn arguments_replace_the_command_and_keep_the_entrypoint() {
        let info = task(
            "cpus:1",
            v1::CommandInfo {
                shell: Some(false),
                arguments: vec!["9000".into()],
                ..Default::default()
            },
        );
        let plan = plan(&info, &container(DockerNetwork::Host, vec![]), &at(Path::new("/sb"), &[])).unwrap();
        assert_eq!((plan.body.entrypoint, plan.body.cmd), (None, Some(vec!["9000".to_owned()])));
    }

    #[test]
    fn parameters_map_onto_the_container_and_unknown_ones_are_named() {
        let info = image_task("cpus:1");
        let mut c = container(DockerNetwork::Host, vec![]);
        let docker = c.docker.as_mut().unwrap();
        docker.parameters = vec![
            Parameter {
                key: "env".into(),
                value: "A=1".into(),
            },
            Parameter {
                key: "label".into(),
                value: "team=web".into(),
            },
            Parameter {
                key: "label".into(),
                value: "paas.agent=someone-else".into(),
            },
            Parameter {
                key: "volume".into(),
                value: "/data:/data:ro".into(),
            },
            Parameter {
                key: "shm-size".into(),
                value: "64m".into(),
            },
        ];
        let plan = plan(&info, &c, &at(Path::new("/sb"), &[])).unwrap();
        assert!(plan.body.env.as_ref().unwrap().contains(&"A=1".to_owned()));
        let labels = plan.body.labels.as_ref().unwrap();
        assert_eq!(labels["team"], "web");
        assert_eq!(labels["paas.agent"], "slave-1", "a parameter cannot disown the container");
        let host = plan.body.host_config.as_ref().unwrap();
        assert_eq!(host.binds, Some(vec!["/data:/data:ro".to_owned()]));
        assert_eq!(host.shm_size, Some(64 << 20));

        c.docker.as_mut().unwrap().parameters = vec![Parameter {
            key: "gpus".into(),
            value: "all".into(),
        }];
        let error = super::plan(&info, &c, &at(Path::new("/sb"), &[])).unwrap_err();
        assert!(error.to_string().starts_with("unsupported docker parameter 'gpus'"), "{error}");
    }

    #[test]
    fn relative_volumes_live_in_the_sandbox_and_others_are_refused() {
        let info = image_task("cpus:1");
        let mut c = container(DockerNetwork::Host, vec![]);
        c.volumes = vec![Volume {
            container_path: "/var/data".into(),
            host_path: Some("data".into()),
            mode: VolumeMode::Ro,
            ..Default::default()
        }];
        let plan = plan(&info, &c, &at(Path::new("/sb"), &[])).unwrap();
        assert_eq!(plan.body.host_config.unwrap().binds, Some(vec!["/sb/data:/var/data:ro".to_owned()]));
        c.volumes[0].host_path = None;
        c.volumes[0].source = Some(serde_json::json!({"type": "SECRET"}));
        assert!(matches!(
            super::plan(&info, &c, &at(Path::new("/sb"), &[])),
            Err(OptionsError::UnsupportedVolume { .. })
        ));
    }

    #[test]
    fn a_mapping_outside_the_tasks_ports_is_refused() {
        let info = image_task("cpus:1;ports:[31000-31000]");
        let mapping = DockerPortMapping {
            host_port: 31001,
            container_port: 80,
            protocol: None,
        };
        let error = plan(&info, &container(DockerNetwork::Bridge, vec![mapping]), &at(Path::new("/sb"), &[])).unwrap_err();
        assert!(matches!(error, OptionsError::HostPortNotOffered { host_port: 31001, .. }));
    }
}

//! [`DockerBackend`]: the core [`Backend`] on a local Docker engine.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bollard::Docker;
use bollard::body_full;
use bollard::models::{ExecConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    RemoveContainerOptions, StopContainerOptions, UploadToContainerOptions,
};
use futures::StreamExt;
use ipnet::Ipv4Net;
use paas_core::Role;
use paas_core::backend::{Backend, BackendError, NodeOp, Observed, Resolved};
use paas_core::render::{ConfigFile, NodeConfig};
use paas_core::resource::{NodeHost, Resource, ResourceKind, ResourceSpec};

use crate::container::{self, ContainerPlan, NODE_CONFIG_PATH, NODE_CONFIG_STAGED_PATH, UPDATE_FINGERPRINT_PATH};
use crate::images::NODE_BINARY_IN_IMAGE;
use crate::labels;

/// Why the Docker engine could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot reach the Docker engine (is it running, and may this user use /var/run/docker.sock?)")]
    Unreachable {
        #[source]
        source: bollard::errors::Error,
    },
}

/// Clusters as Docker networks and containers, every object labelled with its cluster, its
/// resource id and its fingerprint (see [`labels`]).
#[derive(Debug, Clone)]
pub struct DockerBackend {
    docker: Docker,
    default_image: Option<String>,
}

impl DockerBackend {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket), negotiating the API
    /// version, and checks it answers. `default_image` is what nodes run when the spec names
    /// no image for their role (the image `paas sim images` builds).
    pub async fn connect(default_image: Option<String>) -> Result<DockerBackend, ConnectError> {
        let docker = connect_docker().await?;
        Ok(DockerBackend { docker, default_image })
    }

    /// A backend on an already connected client.
    pub fn new(docker: Docker, default_image: Option<String>) -> DockerBackend {
        DockerBackend { docker, default_image }
    }

    /// The Docker client, for logs, images and health probes.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    fn image_for(&self, explicit: Option<&str>, id: &str) -> Result<String, BackendError> {
        explicit.map(str::to_string).or_else(|| self.default_image.clone()).ok_or_else(|| {
            BackendError::failed(
                "create",
                id,
                "no image: build the sim images first (`paas sim images`) or set [sim.images] in the spec",
            )
        })
    }

    async fn list_networks(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let networks = self
            .docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(labels::cluster_filter(cluster)),
            }))
            .await
            .map_err(|e| map_err("list networks", cluster, e))?;
        Ok(networks
            .into_iter()
            .filter_map(|n| {
                let mut attrs = BTreeMap::new();
                if let Some(subnet) = n
                    .ipam
                    .as_ref()
                    .and_then(|i| i.config.as_ref())
                    .and_then(|c| c.first())
                    .and_then(|c| c.subnet.clone())
                {
                    attrs.insert("cidr".to_string(), subnet);
                }
                if let Some(name) = &n.name {
                    attrs.insert("name".to_string(), name.clone());
                }
                labels::observed(cluster, n.id.as_deref()?, n.labels.as_ref()?, attrs)
            })
            .collect())
    }

    async fn list_containers(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(labels::cluster_filter(cluster)),
                ..Default::default()
            }))
            .await
            .map_err(|e| map_err("list containers", cluster, e))?;
        let mut found = Vec::new();
        for c in containers {
            let (Some(id), Some(container_labels)) = (c.id.as_deref(), c.labels.as_ref()) else {
                continue;
            };
            let never_started = c.state == Some(bollard::models::ContainerSummaryStateEnum::CREATED);
            let mut attrs = BTreeMap::new();
            if let Some(state) = &c.state {
                attrs.insert("state".to_string(), state.to_string());
            }
            if let Some(name) = c.names.as_ref().and_then(|n| n.first()) {
                attrs.insert("container".to_string(), name.trim_start_matches('/').to_string());
            }
            let Some(mut observed) = labels::observed(cluster, id, container_labels, attrs) else {
                continue;
            };
            if never_started {
                // An apply was interrupted between create and start: report it as unlike
                // anything desired, so the next apply replaces it and destroy removes it.
                observed.fingerprint.replace = "never-started".into();
            }
            if observed.kind() == ResourceKind::LoadBalancer {
                // Labels are fixed at creation; the last in-place update is recorded inside.
                if let Some(update) = self.read_file(id, UPDATE_FINGERPRINT_PATH).await {
                    observed.fingerprint.update = update.trim().to_string();
                }
                if let Some(port) = c.ports.iter().flatten().find_map(|p| p.public_port) {
                    observed.attrs.insert("url".into(), format!("http://127.0.0.1:{port}/"));
                }
            }
            found.push(observed);
        }
        Ok(found)
    }

    /// One small file of a container (running or not), or `None`.
    async fn read_file(&self, container: &str, path: &str) -> Option<String> {
        self.read_container_file(container, path).await.ok().flatten()
    }

    /// The text of one small file of a container, running or not: `Ok(None)` when the
    /// container has no such file; an error when Docker fails otherwise (e.g. no such
    /// container). The one way this crate reads a file out of a container.
    pub async fn read_container_file(&self, container: &str, path: &str) -> Result<Option<String>, bollard::errors::Error> {
        let mut stream = self
            .docker
            .download_from_container(container, Some(DownloadFromContainerOptions { path: path.into() }));
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, message })
                    if !message.contains("No such container") =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        let mut reader = tar::Archive::new(archive.as_slice());
        let Some(Ok(mut entry)) = reader.entries().ok().and_then(|mut e| e.next()) else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        if std::io::Read::read_to_end(&mut entry, &mut bytes).is_err() {
            return Ok(None);
        }
        // A file that is not UTF-8 (a log with a stray byte) is still worth reading.
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn upload_config(&self, container: &str, id: &str, config: &NodeConfig) -> Result<(), BackendError> {
        let json = serde_json::to_vec_pretty(config).expect("node configuration serializes");
        let mut files: Vec<(&str, &[u8])> = vec![(NODE_CONFIG_PATH, &json)];
        // The files themselves too, so a container can be inspected (or run by another
        // init) before the supervisor writes them.
        files.extend(config.files.iter().map(|f| (f.path.as_str(), f.content.as_bytes())));
        self.upload_files(container, id, &files).await
    }

    /// Copies `files` (path, content) into a container, each readable by all.
    async fn upload_files(&self, container: &str, id: &str, files: &[(&str, &[u8])]) -> Result<(), BackendError> {
        let files: Vec<(&str, &[u8], u32)> = files.iter().map(|(p, c)| (*p, *c, 0o644)).collect();
        let archive = crate::images::tar_files(&files);
        self.docker
            .upload_to_container(
                container,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                body_full(archive.into()),
            )
            .await
            .map_err(|e| map_err("upload node configuration", id, e))
    }

    async fn create_container(&self, cluster: &str, id: &str, plan: ContainerPlan, publish: &[u16]) -> Result<String, BackendError> {
        let options = Some(CreateContainerOptions {
            name: Some(plan.name.clone()),
            ..Default::default()
        });
        let created = match self.docker.create_container(options.clone(), plan.body.clone()).await {
            Ok(created) => created,
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 409, message }) => {
                // A never-started container of this very resource (an interrupted apply):
                // replace it.
                if !self.remove_unstarted(&plan.name, cluster, id).await {
                    return Err(BackendError::failed(
                        "create",
                        id,
                        format!(
                            "a container named {} already exists but is not this cluster's resource {id} (remove it, or rename the cluster): {message}",
                            plan.name
                        ),
                    ));
                }
                self.docker
                    .create_container(options, plan.body)
                    .await
                    .map_err(|e| map_err("create container", id, e))?
            }
            Err(e) => return Err(map_err("create container", id, e)),
        };
        let started = async {
            for network in &plan.extra_networks {
                self.docker
                    .connect_network(
                        network,
                        NetworkConnectRequest {
                            container: Some(created.id.clone()),
                            endpoint_config: None,
                        },
                    )
                    .await
                    .map_err(|e| map_err("join network", id, e))?;
            }
            self.upload_config(&created.id, id, &plan.config).await?;
            self.docker
                .start_container(&created.id, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(|e| match e {
                    bollard::errors::Error::DockerResponseServerError { message, .. } if message.contains("allocated") || message.contains("in use") => BackendError::failed(
                        "start",
                        id,
                        format!("a port it publishes on 127.0.0.1 ({}) is taken by another program; free it or change [sim] http_port, admin_port, marathon_port or mesos_port: {message}", publish_list(publish)),
                    ),
                    e => map_err("start container", id, e),
                })
        }
        .await;
        if let Err(e) = started {
            // A created but never started container would be listed as done: remove it.
            let _ = self.remove_container(&created.id).await;
            return Err(e);
        }
        Ok(created.id)
    }

    /// Removes the container `name` if it is resource `id` of this backend's making and was
    /// never started; whether it did.
    async fn remove_unstarted(&self, name: &str, cluster: &str, id: &str) -> bool {
        let Ok(existing) = self
            .docker
            .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
        else {
            return false;
        };
        let labels = existing.config.and_then(|c| c.labels).unwrap_or_default();
        let ours = labels.get(labels::CLUSTER).map(String::as_str) == Some(cluster)
            && labels.get(labels::RESOURCE).map(String::as_str) == Some(id);
        let unstarted = existing.state.and_then(|s| s.status) == Some(bollard::models::ContainerStateStatusEnum::CREATED);
        ours && unstarted && self.remove_container(name).await.is_ok()
    }

    /// Removes a network. Docker can keep, for a moment or for good, the endpoint of a
    /// container it has already removed, and then refuses with "has active endpoints":
    /// such leftovers (their container is gone) are disconnected by force and the removal is
    /// tried again, for 5 s at most. A live container's endpoint is left alone: the error
    /// stands. An endpoint Docker counts but lists on no container (Docker 20.10 can lose one
    /// that way) only a restart of the Docker daemon releases: the error says so.
    pub(crate) async fn remove_network(&self, network: &str) -> Result<(), bollard::errors::Error> {
        let mut attempts = 0;
        loop {
            let result = self.docker.remove_network(network).await;
            let Err(bollard::errors::Error::DockerResponseServerError { status_code: 403, message }) = &result else {
                return result;
            };
            if !message.contains("active endpoints") {
                return result;
            }
            let endpoints = self
                .docker
                .inspect_network(network, None::<bollard::query_parameters::InspectNetworkOptions>)
                .await?
                .containers
                .unwrap_or_default();
            if attempts == 10 {
                let hint = if endpoints.is_empty() {
                    "; Docker lists no container on it, so the endpoint is a stale one of a removed container, which only a restart of the Docker daemon releases"
                } else {
                    ""
                };
                return Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 403,
                    message: format!("{message}{hint}"),
                });
            }
            attempts += 1;
            for (container, endpoint) in endpoints {
                let gone = matches!(
                    self.docker
                        .inspect_container(&container, None::<bollard::query_parameters::InspectContainerOptions>)
                        .await,
                    Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
                );
                if gone {
                    let leftover = NetworkDisconnectRequest {
                        container: Some(endpoint.name.unwrap_or(container)),
                        force: Some(true),
                    };
                    let _ = self.docker.disconnect_network(network, leftover).await;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    async fn remove_container(&self, container: &str) -> Result<(), bollard::errors::Error> {
        self.docker
            .remove_container(
                container,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
    }

    /// Runs a command in a running container and returns its exit code.
    async fn exec(&self, container: &str, id: &str, cmd: &[&str]) -> Result<i64, BackendError> {
        Ok(self.exec_output(container, id, cmd).await?.0)
    }

    /// Runs a command in a running container: its exit code and its output (stdout and
    /// stderr interleaved). `id` names the node in errors.
    pub async fn exec_output(&self, container: &str, id: &str, cmd: &[&str]) -> Result<(i64, String), BackendError> {
        let exec = self
            .docker
            .create_exec(
                container,
                ExecConfig {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| map_err("exec", id, e))?;
        let mut text = String::new();
        if let bollard::exec::StartExecResults::Attached { mut output, .. } =
            self.docker.start_exec(&exec.id, None).await.map_err(|e| map_err("exec", id, e))?
        {
            while let Some(chunk) = output.next().await {
                if let Ok(chunk) = chunk {
                    text.push_str(&chunk.to_string());
                }
            }
        }
        let inspect = self.docker.inspect_exec(&exec.id).await.map_err(|e| map_err("exec", id, e))?;
        Ok((inspect.exit_code.unwrap_or(-1), text))
    }

    async fn observed_container(&self, cluster: &str, provider_id: &str, id: &str) -> Result<Observed, BackendError> {
        self.list_containers(cluster)
            .await?
            .into_iter()
            .find(|o| o.provider_id == provider_id)
            .ok_or_else(|| BackendError::NotFound {
                op: "read back",
                id: id.into(),
            })
    }
}

/// Connects to the local Docker engine and checks that it answers.
pub async fn connect_docker() -> Result<Docker, ConnectError> {
    let docker = Docker::connect_with_local_defaults().map_err(|source| ConnectError::Unreachable { source })?;
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|source| ConnectError::Unreachable { source })?;
    docker.ping().await.map_err(|source| ConnectError::Unreachable { source })?;
    Ok(docker)
}

/// Whether an observed object is a slave's container (whose agent may run Docker tasks).
fn is_slave(observed: &Observed) -> bool {
    observed.kind() == ResourceKind::Node && observed.attrs.get("role").map(String::as_str) == Some(Role::Slave.as_str())
}

fn publish_list(ports: &[u16]) -> String {
    ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(", ")
}

pub(crate) fn map_err(op: &'static str, id: &str, e: bollard::errors::Error) -> BackendError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { status_code: 404, .. } => BackendError::NotFound { op, id: id.into() },
        E::DockerResponseServerError { status_code, message } if status_code >= 500 && message.contains("timeout") => {
            BackendError::Transient {
                op,
                id: id.into(),
                message,
            }
        }
        E::RequestTimeoutError | E::HyperResponseError { .. } => BackendError::Transient {
            op,
            id: id.into(),
            message: e.to_string(),
        },
        e => BackendError::Failed {
            op,
            id: id.into(),
            message: "Docker refused".into(),
            source: Some(Box::new(e)),
        },
    }
}

/// Host routes (other than the default route and Docker's own bridges) that overlap `cidr`:
/// a cluster network there would hide part of the host's network from it.
pub(crate) fn colliding_host_routes(cidr: Ipv4Net) -> Vec<String> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return vec![];
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, mask) = (cols.first()?, cols.get(1)?, cols.get(7)?);
            let dest = std::net::Ipv4Addr::from(u32::from_be(u32::from_str_radix(dest, 16).ok()?));
            let mask = u32::from_be(u32::from_str_radix(mask, 16).ok()?);
            if mask == 0 || iface.starts_with("br-") || iface.starts_with("docker") || iface.starts_with("veth") {
                return None;
            }
            let route = Ipv4Net::new(dest, mask.count_ones() as u8).ok()?;
            (route.contains(&cidr.network()) || cidr.contains(&route.network())).then(|| format!("{route} dev {iface}"))
        })
        .collect()
}

#[async_trait]
impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn list(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let mut found = self.list_networks(cluster).await?;
        found.extend(self.list_containers(cluster).await?);
        Ok(found)
    }

    async fn create(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let id = resource.id.to_string();
        match &resource.spec {
            ResourceSpec::Network { cidr, gateway } => {
                let collisions = colliding_host_routes(*cidr);
                if !collisions.is_empty() {
                    return Err(BackendError::failed(
                        "create",
                        &id,
                        format!(
                            "the cluster network {cidr} overlaps the host's routes ({}); choose another vpc_cidr",
                            collisions.join(", ")
                        ),
                    ));
                }
                let name = container::network_name(cluster);
                let created = self
                    .docker
                    .create_network(NetworkCreateRequest {
                        name: name.clone(),
                        driver: Some("bridge".into()),
                        ipam: Some(Ipam {
                            driver: Some("default".into()),
                            config: Some(vec![IpamConfig {
                                subnet: Some(cidr.to_string()),
                                gateway: gateway.map(|g| g.to_string()),
                                ..Default::default()
                            }]),
                            options: None,
                        }),
                        labels: Some(labels::for_resource(cluster, resource, &[])),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| match e {
                        bollard::errors::Error::DockerResponseServerError { message, .. } if message.contains("overlap") => BackendError::failed(
                            "create",
                            &id,
                            format!("the cluster network {cidr} overlaps another Docker network (another cluster?); choose another vpc_cidr: {message}"),
                        ),
                        bollard::errors::Error::DockerResponseServerError { status_code: 409, message } => BackendError::failed("create", &id, format!("a Docker network named {name} already exists: {message}")),
                        e => map_err("create network", &id, e),
                    })?;
                let attrs = [("cidr".to_string(), cidr.to_string()), ("name".to_string(), name)].into();
                Ok(Observed {
                    id: resource.id.clone(),
                    provider_id: created.id,
                    fingerprint: resource.fingerprint(),
                    attrs,
                })
            }
            ResourceSpec::Node(node) => {
                let NodeHost::Container { image, publish, .. } = &node.host else {
                    return Err(BackendError::failed(
                        "create",
                        &id,
                        "the sim backend runs container nodes only; plan with --target sim",
                    ));
                };
                let image = self.image_for(image.as_deref(), &id)?;
                if node.role == Role::Slave {
                    self.ensure_task_network(cluster, &node.name).await?;
                }
                let plan = container::for_node(cluster, resource, node, &image);
                let ports: Vec<u16> = publish.iter().map(|(h, _)| *h).collect();
                let provider_id = self.create_container(cluster, &id, plan, &ports).await?;
                self.observed_container(cluster, &provider_id, &id).await
            }
            ResourceSpec::LoadBalancer(lb) => {
                let network = deps
                    .values()
                    .find(|o| o.kind() == ResourceKind::Network)
                    .ok_or_else(|| BackendError::failed("create", &id, "the cluster network is not among its dependencies"))?;
                let cidr: Ipv4Net = network
                    .attrs
                    .get("cidr")
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| BackendError::failed("create", &id, "the cluster network has no known CIDR"))?;
                let image = self.image_for(lb.image.as_deref(), &id)?;
                let plan = container::for_elb(cluster, resource, lb, cidr, &image);
                let ports: Vec<u16> = lb.publish.into_iter().collect();
                let provider_id = self.create_container(cluster, &id, plan, &ports).await?;
                self.observed_container(cluster, &provider_id, &id).await
            }
            other => Err(BackendError::failed(
                "create",
                &id,
                format!(
                    "the sim backend has no {} resources; plan with --target sim",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.get("kind").cloned())
                        .unwrap_or_default()
                ),
            )),
        }
    }

    async fn update(&self, cluster: &str, resource: &Resource, current: &Observed, _deps: &Resolved) -> Result<Observed, BackendError> {
        let id = resource.id.to_string();
        let ResourceSpec::LoadBalancer(lb) = &resource.spec else {
            return Err(BackendError::failed(
                "update",
                &id,
                "only the load balancer changes in place in the sim",
            ));
        };
        let fingerprint = resource.fingerprint();
        let mut config = container::elb_config(lb);
        config.files.push(ConfigFile {
            path: UPDATE_FINGERPRINT_PATH.into(),
            content: fingerprint.update.clone(),
        });
        let json = serde_json::to_vec_pretty(&config).expect("node configuration serializes");
        self.upload_files(&current.provider_id, &id, &[(NODE_CONFIG_STAGED_PATH, &json)])
            .await?;
        match current.attrs.get("state").map(String::as_str) {
            Some("running") => {
                let configure = [NODE_BINARY_IN_IMAGE, "configure", "--config", NODE_CONFIG_PATH];
                let (code, output) = self.exec_output(&current.provider_id, &id, &configure).await?;
                if code != 0 {
                    return Err(BackendError::failed(
                        "update",
                        &id,
                        format!("installing the new HAProxy configuration failed (exit {code}): {}", output.trim()),
                    ));
                }
                // HAProxy's master process reloads its configuration on SIGUSR2, keeping
                // established connections; the oldest haproxy process is the master.
                let code = self
                    .exec(&current.provider_id, &id, &["pkill", "-USR2", "-o", "-x", "haproxy"])
                    .await?;
                if code != 0 {
                    return Err(BackendError::failed(
                        "update",
                        &id,
                        format!("signalling HAProxy to reload failed (pkill exit {code})"),
                    ));
                }
            }
            Some("paused") => {
                return Err(BackendError::failed(
                    "update",
                    &id,
                    "the elb is paused, so its new configuration is staged but not installed: unpause it (`paas chaos heal`) and apply again",
                ));
            }
            // A stopped elb's supervisor installs the staged configuration when it starts.
            _ => {}
        }
        let mut observed = self.observed_container(cluster, &current.provider_id, &id).await?;
        observed.fingerprint = fingerprint;
        Ok(observed)
    }

    async fn delete(&self, cluster: &str, current: &Observed) -> Result<(), BackendError> {
        let id = current.id.to_string();
        let slave = is_slave(current).then(|| current.id.name());
        if let Some(node) = slave {
            // Its tasks go first (a HOST task holds the slave's network namespace); the
            // slave's agent may launch one more before it goes: swept again below.
            self.remove_task_containers(cluster, Some(node)).await?;
        }
        let result = match current.kind() {
            ResourceKind::Network => self.remove_network(&current.provider_id).await,
            _ => self.remove_container(&current.provider_id).await,
        };
        match result {
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {}
            Err(e) => return Err(map_err("delete", &id, e)),
        }
        if let Some(node) = slave {
            self.remove_tasks(cluster, Some(node)).await?;
        }
        Ok(())
    }

    /// A slave's operation reaches its task containers too (see
    /// [`DockerBackend::carry_to_tasks`]): Docker's own would leave them running beside a
    /// dead or frozen slave.
    async fn node_op(&self, cluster: &str, node: &Observed, op: NodeOp) -> Result<(), BackendError> {
        let id = node.id.to_string();
        let container = node.provider_id.as_str();
        let result = match op {
            NodeOp::Stop => {
                self.docker
                    .stop_container(container, Some(StopContainerOptions { t: Some(10), signal: None }))
                    .await
            }
            NodeOp::Start => {
                self.docker
                    .start_container(container, None::<bollard::query_parameters::StartContainerOptions>)
                    .await
            }
            NodeOp::Kill => {
                self.docker
                    .kill_container(container, Some(KillContainerOptions { signal: "SIGKILL".into() }))
                    .await
            }
            NodeOp::Pause => self.docker.pause_container(container).await,
            NodeOp::Unpause => self.docker.unpause_container(container).await,
        };
        match result {
            // Starting a running node or stopping a stopped one is already done.
            Ok(()) | Err(bollard::errors::Error::DockerResponseServerError { status_code: 304, .. }) => {}
            Err(e) => return Err(map_err("node operation", &id, e)),
        }
        if is_slave(node) {
            self.carry_to_tasks(cluster, node.id.name(), op).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cidr_does_not_collide_with_this_host() {
        // The default spec's network must be creatable here; a collision would be reported
        // with the route that causes it.
        assert_eq!(colliding_host_routes("10.20.0.0/16".parse().unwrap()), Vec::<String>::new());
    }

    #[test]
    fn a_host_route_inside_the_cidr_collides() {
        let routes = std::fs::read_to_string("/proc/net/route").unwrap();
        let has_lo_free_route = routes
            .lines()
            .skip(1)
            .any(|l| !l.contains("docker") && l.split_whitespace().nth(7) != Some("00000000"));
        if has_lo_free_route {
            assert!(
                !colliding_host_routes("0.0.0.0/1".parse().unwrap()).is_empty()
                    || !colliding_host_routes("128.0.0.0/1".parse().unwrap()).is_empty()
            );
        }
    }
}

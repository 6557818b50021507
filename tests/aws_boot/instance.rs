//! Instance stand-ins: Debian 12 containers with systemd as PID 1 and cloud-init, booted from a
//! NoCloud seed holding a node's user-data exactly as rendered for AWS.
//!
//! The image is the sim's debootstrap base (`paas_docker::images`) plus Debian's `systemd`,
//! `cloud-init` and the packages the user-data installs (preinstalled for speed: the
//! user-data's own `apt-get install` still runs at boot, and finds them). `--privileged` is
//! refused by this engine; systemd runs with `SYS_ADMIN`, tmpfs on `/run` and the host's cgroups.
//! Without privileges no Docker engine runs inside a container, so a slave's engine is the
//! host's, its socket mounted where Debian's `docker.io` puts it (as the sim's slaves reach it);
//! the image masks the packaged engine's units, and the user-data, finding an engine that
//! answers, starts none.

use std::net::Ipv4Addr;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest};
use bollard::query_parameters::{
    BuildImageOptions, CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions, UploadToContainerOptions,
};
use futures::StreamExt;
use paas_docker::images;

/// Every container and network of these tests carries this label (value: the test process id),
/// so that what a killed run left is found and removed.
pub const LABEL: &str = "paas.aws-boot";

/// The address of EC2's instance metadata service.
pub const METADATA_ADDRESS: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// What the user-data installs, preinstalled in the image (see the module docs), and what
/// makes the image an instance: systemd as init, cloud-init, locales (cloud-init's locale
/// module fails without them), python3 (on the AMI; the user-data parses JSON with it).
const IMAGE_PACKAGES: &str =
    "systemd systemd-sysv cloud-init locales python3 curl ca-certificates nginx zookeeper default-jre-headless docker.io";

fn dockerfile(base: &str) -> String {
    format!(
        "FROM {base}\n\
         RUN apt-get update \\\n \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends {IMAGE_PACKAGES} \\\n \
         && sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && locale-gen \\\n \
         && systemctl mask docker.service docker.socket containerd.service \\\n \
         && rm -rf /var/lib/apt/lists/*\n\
         STOPSIGNAL SIGRTMIN+3\n\
         CMD [\"/sbin/init\"]\n"
    )
}

/// Builds the instance image unless it is there already; returns its tag. Panics naming what
/// failed (the build's last lines included).
pub async fn image(docker: &Docker) -> String {
    let inputs = images::ImageInputs::from_env().unwrap_or_else(|e| panic!("{e}"));
    let sim = images::ensure(docker, &inputs, &|_| {})
        .await
        .unwrap_or_else(|e| panic!("building the sim's base image: {e:#}"));
    let dockerfile = dockerfile(&sim.base);
    let tag = format!("paas-aws-instance:{:016x}", fnv1a(dockerfile.as_bytes()));
    if images::is_present(docker, &tag).await.unwrap_or(false) {
        return tag;
    }
    let context = images::tar_one_file("Dockerfile", dockerfile.as_bytes(), 0o644);
    let options = BuildImageOptions {
        t: Some(tag.clone()),
        rm: true,
        forcerm: true,
        ..Default::default()
    };
    let mut build = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let mut tail: Vec<String> = Vec::new();
    while let Some(step) = build.next().await {
        match step {
            Ok(info) => {
                if let Some(error) = info.error_detail.and_then(|d| d.message) {
                    panic!("building {tag}: {error}\n{}", tail.join(""));
                }
                if let Some(line) = info.stream {
                    tail.push(line);
                    if tail.len() > 40 {
                        tail.remove(0);
                    }
                }
            }
            Err(e) => panic!("building {tag}: {e}\n{}", tail.join("")),
        }
    }
    tag
}

/// A stable hash for the image tag (the Dockerfile names the base image's tag, so it changes
/// with the base).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

/// Creates a bridge network `name` on `subnet` with `gateway` (the host's address on it).
pub async fn create_network(docker: &Docker, name: &str, subnet: &str, gateway: Ipv4Addr) {
    docker
        .create_network(NetworkCreateRequest {
            name: name.into(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_owned()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                options: None,
            }),
            labels: Some([(LABEL.to_string(), std::process::id().to_string())].into()),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("creating the Docker network {name} ({subnet}): {e}"));
}

/// Removes the containers and networks of these tests: this process's own (`Some(pid)`), or
/// every one (`None`), which is what a killed run left (the metadata network's subnet is
/// fixed, so a leftover would block the next run).
pub async fn remove_leftovers(docker: &Docker, process: Option<u32>) {
    let label = match process {
        Some(pid) => format!("{LABEL}={pid}"),
        None => LABEL.to_string(),
    };
    let filters = Some([("label".to_string(), vec![label])].into());
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: filters.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_or_default();
    for id in containers.into_iter().filter_map(|c| c.id) {
        let _ = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters }))
        .await
        .unwrap_or_default();
    for name in networks.into_iter().filter_map(|n| n.name) {
        let _ = docker.remove_network(&name).await;
    }
}

/// The networks an instance is on: the cluster's (the VPC) and the metadata service's.
pub struct Networks {
    pub cluster: String,
    pub metadata: String,
}

/// One instance stand-in.
pub struct Instance {
    pub name: String,
    pub container: String,
    pub address: Ipv4Addr,
}

impl Instance {
    /// Creates the container on the cluster network at `address`, attaches it to the metadata
    /// network, seeds cloud-init's NoCloud datasource with `user_data`, and boots it. With
    /// `docker_engine` the host's engine answers on the instance's Docker socket.
    pub async fn boot(
        docker: &Docker,
        image: &str,
        name: &str,
        networks: &Networks,
        address: Ipv4Addr,
        user_data: &str,
        docker_engine: bool,
    ) -> Instance {
        let mut binds = vec!["/sys/fs/cgroup:/sys/fs/cgroup:rw".to_owned()];
        if docker_engine {
            binds.push("/var/run/docker.sock:/var/run/docker.sock".to_owned());
        }
        let container = format!("paas-aws-boot-{}-{name}", std::process::id());
        let body = ContainerCreateBody {
            hostname: Some(name.into()),
            image: Some(image.into()),
            labels: Some([(LABEL.to_string(), std::process::id().to_string())].into()),
            host_config: Some(HostConfig {
                cap_add: Some(vec!["SYS_ADMIN".into()]),
                tmpfs: Some([("/run".to_string(), String::new()), ("/run/lock".to_string(), String::new())].into()),
                binds: Some(binds),
                network_mode: Some(networks.cluster.clone()),
                ..Default::default()
            }),
            networking_config: Some(paas_docker::container::on_network_at(networks.cluster.clone(), address)),
            ..Default::default()
        };
        docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(container.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .unwrap_or_else(|e| panic!("creating the instance {name}: {e}"));
        // Docker attaches one network at creation; the second before start, so that the
        // metadata service is there when cloud-init runs.
        docker
            .connect_network(
                &networks.metadata,
                NetworkConnectRequest {
                    container: Some(container.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("attaching {name} to the metadata network: {e}"));
        let meta_data = format!("instance-id: i-{name}\nlocal-hostname: {name}\n");
        let seed = images::tar_files(&[
            ("var/lib/cloud/seed/nocloud/user-data", user_data.as_bytes(), 0o600),
            ("var/lib/cloud/seed/nocloud/meta-data", meta_data.as_bytes(), 0o600),
        ]);
        docker
            .upload_to_container(
                &container,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(seed.into()),
            )
            .await
            .unwrap_or_else(|e| panic!("seeding cloud-init on {name}: {e}"));
        docker
            .start_container(&container, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .unwrap_or_else(|e| panic!("booting {name}: {e}"));
        Instance {
            name: name.into(),
            container,
            address,
        }
    }

    /// Runs `script` with `sh -c` on the instance: exit code and output.
    pub async fn sh(&self, docker: &Docker, script: &str) -> (i64, String) {
        let exec = docker
            .create_exec(
                &self.container,
                bollard::models::ExecConfig {
                    cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .unwrap_or_else(|e| panic!("exec on {}: {e}", self.name));
        let mut text = String::new();
        if let Ok(bollard::exec::StartExecResults::Attached { mut output, .. }) = docker.start_exec(&exec.id, None).await {
            while let Some(Ok(chunk)) = output.next().await {
                text.push_str(&chunk.to_string());
            }
        }
        let code = docker.inspect_exec(&exec.id).await.ok().and_then(|i| i.exit_code).unwrap_or(-1);
        (code, text)
    }

    /// Waits until cloud-init has finished on the instance (its final stage ran the boot
    /// script, whatever that did); returns `cloud-init status`. Panics after `timeout` with
    /// cloud-init's output.
    pub async fn wait_cloud_init(&self, docker: &Docker, timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (_, status) = self.sh(docker, "cloud-init status 2>&1").await;
            if status.contains("status: done") || status.contains("status: error") {
                return status;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{}: cloud-init did not finish within {timeout:?} ({status})\n{}",
                    self.name,
                    self.console(docker).await
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// What the instance's console shows of its boot: cloud-init's output.
    pub async fn console(&self, docker: &Docker) -> String {
        self.sh(docker, "tail -n 60 /var/log/cloud-init-output.log").await.1
    }
}

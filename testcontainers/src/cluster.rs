//! A whole sim cluster as a test fixture.

use std::path::PathBuf;
use std::time::Duration;

use paas_core::ClusterSpec;
use paas_docker::sim::{Endpoints, Sim, SimError};

/// Why a cluster could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("starting sim cluster {cluster}")]
    Start {
        cluster: String,
        #[source]
        source: SimError,
    },
    #[error("deploying app {app} to cluster {cluster}: {message}")]
    Deploy { cluster: String, app: String, message: String },
}

/// A cluster of the sim, up and healthy; every container and network of it is removed on drop.
pub struct SimCluster {
    pub spec: ClusterSpec,
    pub endpoints: Endpoints,
    state_dir: PathBuf,
}

impl SimCluster {
    /// Builds the images if needed, brings `spec` up and waits up to `timeout` for it to be
    /// healthy. Give each test its own `name`, `vpc_cidr` and `sim` ports. Fails naming what is
    /// still unhealthy.
    pub async fn start(spec: ClusterSpec, timeout: Duration) -> Result<SimCluster, ClusterError> {
        let err = |source| ClusterError::Start {
            cluster: spec.name.clone(),
            source,
        };
        let image = paas_docker::sim::ensure_images(&|_| {}).await.map_err(err)?;
        let state_dir = std::env::temp_dir().join(format!("paas-testcontainers-{}-{}", spec.name, std::process::id()));
        let sim = Sim::connect(spec.clone(), &state_dir, Some(image)).await.map_err(err)?;
        let cluster = SimCluster {
            endpoints: Endpoints::of(&spec),
            spec: spec.clone(),
            state_dir,
        };
        // From here on, drop cleans up whatever was made.
        sim.up(timeout, &|_| {}, &|_| {}).await.map_err(err)?;
        // Through the admin entry's plain Marathon port, as any client reaches it; a cluster
        // without an admin entry is reached at a master's address on the cluster network.
        let marathon = if spec.nodes.adminlb > 0 {
            cluster.marathon()
        } else {
            let master = sim
                .topology
                .nodes_of(paas_core::Role::Master)
                .next()
                .expect("validated specs have masters")
                .address;
            format!("http://{master}:{}", paas_core::render::ports::MARATHON)
        };
        let apps: Vec<String> = match &spec.apps {
            None => vec![paas_core::app::WWW_APP_JSON.to_owned()],
            Some(files) => files.iter().map(|f| std::fs::read_to_string(f).unwrap_or_default()).collect(),
        };
        for app in apps {
            cluster.deploy(&marathon, &app).await?;
        }
        Ok(cluster)
    }

    /// POSTs an app definition to Marathon.
    async fn deploy(&self, marathon: &str, app: &str) -> Result<(), ClusterError> {
        let id = serde_json::from_str::<serde_json::Value>(app)
            .ok()
            .and_then(|v| v["id"].as_str().map(String::from))
            .unwrap_or_default();
        let fail = |message: String| ClusterError::Deploy {
            cluster: self.spec.name.clone(),
            app: id.clone(),
            message,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let response = http
            .post(format!("{marathon}/v2/apps"))
            .header("Content-Type", "application/json")
            .body(app.to_owned())
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        match response.status().as_u16() {
            201 | 409 => Ok(()),
            status => Err(fail(format!(
                "Marathon answered {status}: {}",
                response.text().await.unwrap_or_default()
            ))),
        }
    }

    /// `http://127.0.0.1:<port>` of the elb; send `Host: <app>.<domain>`.
    pub fn elb(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.sim.http_port)
    }

    /// `http://127.0.0.1:<port>` of the admin entry; send `Host: marathon.admin.<domain>`.
    pub fn admin(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.sim.admin_port)
    }

    /// `http://127.0.0.1:<port>` where the admin entry serves Marathon (its leader's view) to
    /// any HTTP client, no host name needed. Needs an admin entry (`nodes.adminlb`).
    pub fn marathon(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.sim.marathon_port)
    }

    /// `http://127.0.0.1:<port>` where the admin entry serves the leading Mesos master to any
    /// HTTP client. Needs an admin entry (`nodes.adminlb`).
    pub fn mesos(&self) -> String {
        format!("http://127.0.0.1:{}", self.spec.sim.mesos_port)
    }
}

impl Drop for SimCluster {
    fn drop(&mut self) {
        // Drop cannot await: remove by label with the docker CLI, which also works when the
        // test's runtime is gone.
        let label = format!("label=paas.cluster={}", self.spec.name);
        for (list, remove) in [(["ps", "-aq"], ["rm", "-f"]), (["network", "ls"], ["network", "rm"])] {
            let mut args: Vec<&str> = list.to_vec();
            if list[0] == "network" {
                args.push("-q");
            }
            args.extend(["--filter", label.as_str()]);
            if let Ok(out) = std::process::Command::new("docker").args(&args).output() {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect();
                if !ids.is_empty() {
                    let _ = std::process::Command::new("docker").args(remove).args(&ids).output();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

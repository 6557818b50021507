//! Tasks with a DOCKER ContainerInfo on an agent with `--containerizers=docker,mesos`, against
//! the real Docker engine: networking (BRIDGE through the agent's relay, HOST), the container's
//! name, labels and limits, kill with grace, exit codes, a missing image, COMMAND health
//! checks, and an agent restart that recovers its container and removes an orphan.

use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, InspectContainerOptions, StartContainerOptions};
use paas_node::mesos::v1::{self, Id, Offer, TaskState};

use super::docker_support::{DockerAgent, DockerEnv};
use crate::support::eventually;
use crate::support::framework::{TestFramework, framework_info};
use crate::support::mesos::MesosCluster;

/// A DOCKER task of the test image on the offer's agent. `ports` are the host ports it takes;
/// with `bridge`, each maps to the app's container port 8080.
fn docker_task(offer: &Offer, id: &str, image: &str, bridge: bool, ports: &[u64], command: v1::CommandInfo) -> v1::TaskInfo {
    let mut resources = vec![v1::Resource::scalar("cpus", 0.25), v1::Resource::scalar("mem", 48.0)];
    if !ports.is_empty() {
        resources.push(v1::Resource::ranges(
            "ports",
            ports.iter().map(|&p| v1::Range { begin: p, end: p }).collect(),
        ));
    }
    let container = v1::ContainerInfo {
        kind: v1::ContainerType::Docker,
        docker: Some(v1::DockerInfo {
            image: image.into(),
            network: if bridge {
                v1::DockerNetwork::Bridge
            } else {
                v1::DockerNetwork::Host
            },
            port_mappings: if bridge {
                ports
                    .iter()
                    .map(|&p| v1::DockerPortMapping {
                        host_port: p as u32,
                        container_port: 8080,
                        protocol: Some("tcp".into()),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    v1::TaskInfo {
        name: id.into(),
        task_id: Id::new(id),
        agent_id: offer.agent_id.clone(),
        resources,
        command: Some(command),
        container: Some(serde_json::to_value(container).unwrap()),
        ..Default::default()
    }
}

/// The image's own entrypoint and command.
fn image_default() -> v1::CommandInfo {
    v1::CommandInfo {
        shell: Some(false),
        ..Default::default()
    }
}

fn shell(command: &str) -> v1::CommandInfo {
    v1::CommandInfo {
        shell: Some(true),
        value: Some(command.into()),
        ..Default::default()
    }
}

/// The first port the offer has.
fn first_port(offer: &Offer) -> u64 {
    offer
        .resources
        .iter()
        .find(|r| r.name == "ports")
        .and_then(|r| r.ranges.as_ref())
        .map(|r| r.range[0].begin)
        .expect("the offer has ports")
}

async fn get(url: &str) -> Option<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    let response = client.get(url).send().await.ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

/// Starts Mesos with one docker agent and subscribes a framework; returns its first offer. The
/// Docker environment comes first so that it is dropped last: its clean-up runs once the agent
/// (and so any launch in flight) is gone.
async fn setup(test: &str) -> (DockerEnv, MesosCluster, DockerAgent, TestFramework, Offer) {
    let mut cluster = MesosCluster::start(1, &[]).await;
    let mut env = DockerEnv::new(test).await;
    let agent = env.start_agent(&mut cluster, 5);
    let master = cluster.leader_url().await.unwrap();
    let mut framework = TestFramework::subscribe(&master, framework_info(test)).await;
    let offer = framework.offers().await.remove(0);
    (env, cluster, agent, framework, offer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_bridge_task_is_served_at_the_agent_port_named_labelled_and_limited() {
    let (env, cluster, agent, mut framework, offer) = setup("bridge").await;
    let port = first_port(&offer);
    framework
        .accept(
            &offer,
            vec![docker_task(&offer, "web.1", &env.image, true, &[port], image_default())],
        )
        .await;
    framework.await_state("web.1", TaskState::Starting).await;
    framework.await_state("web.1", TaskState::Running).await;

    let url = format!("http://{}:{port}/", agent.address);
    let body = eventually(Duration::from_secs(20), "the app through the agent's port", || get(&url)).await;
    assert!(body.starts_with("web.1 "), "the app answers with its task id: {body:?}");

    let container = env.container_of_task(&agent, "web.1").await.expect("the task's container");
    let labels = container.config.as_ref().unwrap().labels.clone().unwrap();
    let container_id = labels["mesos.container_id"].clone();
    assert_eq!(container.name.as_deref(), Some(format!("/mesos-{container_id}").as_str()));
    assert_eq!(labels["paas.agent"], agent.address);
    assert_eq!(labels["mesos.task_id"], "web.1");
    assert_eq!(labels["mesos.agent_id"], offer.agent_id.value);
    assert_eq!(labels["mesos.framework_id"], framework.id.value);
    assert_eq!(labels["paas.test"], "node", "--docker_task_labels");
    let host = container.host_config.clone().unwrap();
    assert_eq!(host.cpu_shares, Some(256), "0.25 cpus");
    assert_eq!(host.memory, Some(48 * 1024 * 1024), "48 MB");
    assert_eq!(host.network_mode.as_deref(), Some(env.network.as_str()));
    let mounts = container.mounts.clone().unwrap_or_default();
    assert!(
        mounts
            .iter()
            .all(|m| !m.source.as_deref().unwrap_or_default().contains("docker.sock")),
        "a task container never gets the Docker socket: {mounts:?}"
    );

    // The agent's /state shows the task's container as Mesos does.
    let state = cluster
        .get_json(&format!("http://{}:{}/state", agent.address, agent.port))
        .await
        .expect("the agent's /state");
    let executor = &state["frameworks"][0]["executors"][0];
    assert_eq!(executor["container"], container_id.as_str());
    assert_eq!(executor["tasks"][0]["container"]["type"], "DOCKER");
    assert_eq!(state["flags"]["containerizers"], "docker,mesos");

    // The container's output lands in the sandbox.
    let work_dir = &cluster.agents[agent.index];
    eventually(Duration::from_secs(10), "the app's output in the sandbox", || async {
        let stdout = work_dir.sandbox_stdouts("web.1").into_iter().next()?;
        std::fs::read_to_string(stdout).ok()?.contains("listening on 8080").then_some(())
    })
    .await;

    framework.kill("web.1").await;
    let killed = framework.await_state("web.1", TaskState::Killed).await;
    assert!(killed.message.unwrap_or_default().starts_with("Container exited with status"));
    eventually(Duration::from_secs(10), "the container removed", || async {
        env.container_of_task(&agent, "web.1").await.is_none().then_some(())
    })
    .await;
    assert!(get(&url).await.is_none(), "the port is closed with the task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_host_task_binds_its_offered_port_with_mesos_environment() {
    let (env, _cluster, agent, mut framework, offer) = setup("host").await;
    let port = first_port(&offer);
    framework
        .accept(
            &offer,
            vec![docker_task(&offer, "host.1", &env.image, false, &[port], image_default())],
        )
        .await;
    framework.await_state("host.1", TaskState::Running).await;
    let url = format!("http://{}:{port}/env", agent.address);
    let environment = eventually(Duration::from_secs(20), "the HOST app on its offered port", || get(&url)).await;
    for line in [
        format!("PORT0={port}"),
        format!("PORT_{port}={port}"),
        format!("PORTS={port}"),
        format!("HOST={}", agent.address),
        "MESOS_TASK_ID=host.1".to_owned(),
    ] {
        assert!(
            environment.lines().any(|l| l == line),
            "{line} in the task's environment:\n{environment}"
        );
    }
    let container = env.container_of_task(&agent, "host.1").await.unwrap();
    assert_eq!(container.host_config.unwrap().network_mode.as_deref(), Some("host"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_kill_sends_sigterm_then_sigkill_after_the_grace_period() {
    let (env, cluster, agent, mut framework, offer) = setup("grace").await;
    let port = first_port(&offer);
    let mut command = image_default();
    command.environment = Some(v1::Environment {
        variables: vec![v1::Variable {
            name: "IGNORE_SIGTERM".into(),
            kind: None,
            value: Some("1".into()),
        }],
    });
    let mut task = docker_task(&offer, "stubborn", &env.image, true, &[port], command);
    task.kill_policy = Some(v1::KillPolicy {
        grace_period: Some(v1::DurationInfo::from_secs_f64(2.0)),
    });
    framework.accept(&offer, vec![task]).await;
    framework.await_state("stubborn", TaskState::Running).await;
    let url = format!("http://{}:{port}/", agent.address);
    eventually(Duration::from_secs(20), "the app serving", || get(&url)).await;
    framework.kill("stubborn").await;
    let killed = framework.await_state("stubborn", TaskState::Killed).await;
    // It ignored SIGTERM, so SIGKILL ended it: 128 + 9.
    assert_eq!(killed.message.as_deref(), Some("Container exited with status 137"));
    let stdout = cluster.agents[agent.index].sandbox_stdouts("stubborn").remove(0);
    assert!(
        std::fs::read_to_string(stdout).unwrap().contains("got SIGTERM"),
        "SIGTERM came first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_exit_codes_finish_or_fail_and_a_missing_image_fails_with_mesos_message() {
    let (env, _cluster, _agent, mut framework, offer) = setup("exits").await;
    let mut unknown = docker_task(&offer, "bad-param", &env.image, false, &[], shell("true"));
    if let Some(container) = unknown.container.as_mut() {
        container["docker"]["parameters"] = serde_json::json!([{"key": "gpus", "value": "all"}]);
    }
    framework
        .accept(
            &offer,
            vec![
                docker_task(&offer, "ok", &env.image, false, &[], shell("echo done; exit 0")),
                docker_task(&offer, "three", &env.image, false, &[], shell("exit 3")),
                docker_task(&offer, "missing", "paas-no-such-image:never", false, &[], image_default()),
                unknown,
            ],
        )
        .await;
    let finished = framework.await_state("ok", TaskState::Finished).await;
    assert_eq!(finished.message.as_deref(), Some("Container exited with status 0"));
    let failed = framework.await_state("three", TaskState::Failed).await;
    assert_eq!(failed.message.as_deref(), Some("Container exited with status 3"));
    let missing = framework.await_state("missing", TaskState::Failed).await;
    let message = missing.message.unwrap_or_default();
    assert!(
        message.starts_with("Failed to launch container: Failed to run 'docker -H unix:///var/run/docker.sock pull paas-no-such-image:never': exited with status 1; stderr='"),
        "{message}"
    );
    assert_eq!(missing.reason.as_deref(), Some("REASON_CONTAINER_LAUNCH_FAILED"));
    let refused = framework.await_state("bad-param", TaskState::Failed).await;
    assert!(refused.message.unwrap_or_default().contains("unsupported docker parameter 'gpus'"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_tasks_fail_on_an_agent_without_the_docker_containerizer() {
    let cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.unwrap();
    let mut framework = TestFramework::subscribe(&master, framework_info("mesos-only")).await;
    let offer = framework.offers().await.remove(0);
    framework
        .accept(&offer, vec![docker_task(&offer, "boxed", "any:1", false, &[], image_default())])
        .await;
    let failed = framework.await_state("boxed", TaskState::Failed).await;
    assert_eq!(
        failed.message.as_deref(),
        Some("None of the enabled containerizers (mesos) could create a container for the provided TaskInfo/ExecutorInfo message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_failing_command_health_check_kills_the_task() {
    let (env, _cluster, _agent, mut framework, offer) = setup("health").await;
    // On the test's bridge network: the app's port 8080 is its own there.
    let mut task = docker_task(&offer, "sick", &env.image, true, &[], image_default());
    // Inside the container: the file exists only there, so a passing check proves where it ran.
    task.health_check = Some(
        serde_json::to_value(v1::HealthCheck {
            command: Some(shell("test -f /app/app.py && test -f /tmp/unhealthy")),
            delay_seconds: 0.0,
            interval_seconds: 0.5,
            timeout_seconds: 5.0,
            consecutive_failures: 2,
            grace_period_seconds: 0.0,
            ..v1::HealthCheck::default()
        })
        .unwrap(),
    );
    framework.accept(&offer, vec![task]).await;
    framework.await_state("sick", TaskState::Running).await;
    let killed = framework.await_state("sick", TaskState::Killed).await;
    assert_eq!(killed.healthy, Some(false), "the end says the health check killed it");
    let unhealthy = framework
        .statuses
        .iter()
        .any(|s| s.task_id.value == "sick" && s.state == TaskState::Running && s.healthy == Some(false));
    assert!(unhealthy, "a TASK_RUNNING with healthy=false came first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_docker_restarted_agent_recovers_its_container_and_removes_an_orphan() {
    let (env, mut cluster, agent, mut framework, offer) = setup("recover").await;
    let port = first_port(&offer);
    framework
        .accept(
            &offer,
            vec![docker_task(&offer, "durable", &env.image, true, &[port], image_default())],
        )
        .await;
    framework.await_state("durable", TaskState::Running).await;
    let url = format!("http://{}:{port}/", agent.address);
    eventually(Duration::from_secs(20), "the app serving", || get(&url)).await;
    let before = env.container_of_task(&agent, "durable").await.unwrap();

    // A container with this agent's labels that it never launched: an orphan. And one with its
    // name but another cluster's labels: not its own, left alone.
    let orphan = format!("{}-orphan", env.network);
    let foreign = format!("{}-foreign", env.network);
    for (name, test_label) in [(&orphan, "node"), (&foreign, "another-cluster")] {
        let labels = [
            ("paas.agent".to_owned(), agent.address.clone()),
            ("paas.test".to_owned(), test_label.to_owned()),
            ("mesos.task_id".to_owned(), "ghost".to_owned()),
        ];
        env.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(env.image.clone()),
                    labels: Some(labels.into()),
                    host_config: Some(bollard::models::HostConfig {
                        network_mode: Some(env.network.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        env.docker.start_container(name, None::<StartContainerOptions>).await.unwrap();
    }

    env.restart_agent(&mut cluster, &agent);
    eventually(Duration::from_secs(30), "the orphan removed by the restarted agent", || async {
        env.docker
            .inspect_container(&orphan, None::<InspectContainerOptions>)
            .await
            .is_err()
            .then_some(())
    })
    .await;
    let leader = cluster.leader_url().await.unwrap();
    eventually(
        Duration::from_secs(30),
        "the agent re-registered under its id with the task",
        || async {
            let state = cluster.get_json(&format!("{leader}/master/state")).await?;
            let slave = state["slaves"]
                .as_array()?
                .iter()
                .find(|s| s["id"] == offer.agent_id.value.as_str())?
                .clone();
            let running = state["frameworks"]
                .as_array()?
                .iter()
                .flat_map(|f| f["tasks"].as_array().cloned().unwrap_or_default())
                .any(|t| t["id"] == "durable" && t["state"] == "TASK_RUNNING");
            (slave["active"] == true && running).then_some(())
        },
    )
    .await;
    let foreign_state = env
        .docker
        .inspect_container(&foreign, None::<InspectContainerOptions>)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(foreign_state.running, Some(true), "another cluster's container is left alone");
    let _ = env
        .docker
        .remove_container(
            &foreign,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    let after = env.container_of_task(&agent, "durable").await.expect("the container still there");
    assert_eq!(after.id, before.id, "the same container");
    assert_eq!(
        after.state.as_ref().and_then(|s| s.started_at.clone()),
        before.state.as_ref().and_then(|s| s.started_at.clone()),
        "not restarted"
    );
    let body = eventually(Duration::from_secs(20), "the app through the recovered agent's port", || get(&url)).await;
    assert!(body.starts_with("durable "));
    // Status updates keep flowing from the recovered task.
    framework.kill("durable").await;
    framework.await_state("durable", TaskState::Killed).await;
}

//! Marathon apps as Docker images, on an agent with the docker containerizer and the real
//! Docker engine: BRIDGE apps (both JSON forms) served at the agents' host ports with service
//! ports allocated, a HOST app on its offered port, HTTP health checks through the port
//! mappings, a failing COMMAND check replacing its task, and a missing image failing with
//! Mesos' message and backing off.

use std::time::Duration;

use serde_json::Value;

use super::Platform;
use crate::mesos::docker_support::DockerEnv;
use crate::support::eventually;

async fn get_text(url: &str) -> Option<String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().ok()?;
    let response = client.get(url).send().await.ok()?;
    response.status().is_success().then_some(())?;
    response.text().await.ok()
}

async fn post_app(platform: &Platform, app: Value) {
    let response = platform
        .http
        .post(format!("{}/v2/apps", platform.marathons[0].url()))
        .json(&app)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        status.as_u16(),
        201,
        "POST {}: {}",
        app["id"],
        response.text().await.unwrap_or_default()
    );
}

async fn get_app(platform: &Platform, id: &str) -> Option<Value> {
    let url = format!(
        "{}/v2/apps{id}?embed=app.tasks&embed=app.lastTaskFailure",
        platform.marathons[0].url()
    );
    let body: Value = crate::support::try_get_json(&platform.http, &url).await?;
    Some(body["app"].clone())
}

/// Mesos with one docker agent (10 ports of its own) and one Marathon. The Docker environment
/// comes first so that it is dropped last: its clean-up runs once Marathon and the agent are
/// gone, so no replacement task is launched behind it.
async fn setup(test: &str) -> (DockerEnv, Platform, String) {
    let mut platform = Platform::start(1, 0).await;
    let mut env = DockerEnv::new(test).await;
    let agent = env.start_agent(&mut platform.mesos, 10);
    (env, platform, agent.address)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_docker_bridge_apps_are_served_at_their_host_ports_with_service_ports() {
    let (env, platform, address) = setup("mbridge").await;
    let health = serde_json::json!([{"protocol": "HTTP", "path": "/health", "portIndex": 0,
        "gracePeriodSeconds": 10, "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 3}]);
    // The legacy form: docker.network and docker.portMappings.
    post_app(
        &platform,
        serde_json::json!({"id": "/legacy", "instances": 2, "cpus": 0.1, "mem": 48,
            "container": {"type": "DOCKER", "docker": {"image": env.image, "network": "BRIDGE",
                "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}]}},
            "healthChecks": health, "taskKillGracePeriodSeconds": 1}),
    )
    .await;
    // Marathon 1.5's form: networks and container.portMappings (no hostPort: any port).
    post_app(
        &platform,
        serde_json::json!({"id": "/current", "instances": 1, "cpus": 0.1, "mem": 48,
            "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER", "docker": {"image": env.image},
                "portMappings": [{"containerPort": 8080, "name": "http"}]},
            "healthChecks": health}),
    )
    .await;
    for (id, instances) in [("/legacy", 2), ("/current", 1)] {
        let tasks = platform.await_running(0, id, instances, true).await;
        let app = get_app(&platform, id).await.unwrap();
        let mappings = app["container"]["portMappings"]
            .as_array()
            .or_else(|| app["container"]["docker"]["portMappings"].as_array())
            .unwrap()
            .clone();
        let service_port = mappings[0]["servicePort"].as_u64().unwrap();
        assert!(
            (10000..20000).contains(&service_port),
            "{id}: a service port as Marathon allocates: {service_port}"
        );
        assert_eq!(
            app["ports"],
            serde_json::json!([service_port]),
            "{id}: the app's ports are its service ports"
        );
        for task in tasks {
            assert_eq!(task["host"], address.as_str());
            assert_eq!(task["servicePorts"], serde_json::json!([service_port]));
            let host_port = task["ports"][0].as_u64().expect("the task's host port");
            let url = format!("http://{address}:{host_port}/");
            let body = eventually(Duration::from_secs(20), "the task at host:hostPort", || get_text(&url)).await;
            assert!(body.starts_with(task["id"].as_str().unwrap()), "{id}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_docker_host_app_binds_its_port_and_a_failing_command_check_replaces_the_task() {
    let (env, platform, address) = setup("mhost").await;
    post_app(
        &platform,
        serde_json::json!({"id": "/hosted", "instances": 1, "cpus": 0.1, "mem": 48,
            "container": {"type": "DOCKER", "docker": {"image": env.image, "network": "HOST"}},
            "portDefinitions": [{"port": 0}],
            "healthChecks": [{"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 10,
                "intervalSeconds": 1, "timeoutSeconds": 2, "maxConsecutiveFailures": 3}]}),
    )
    .await;
    let tasks = platform.await_running(0, "/hosted", 1, true).await;
    let port = tasks[0]["ports"][0].as_u64().unwrap();
    let url = format!("http://{address}:{port}/");
    let body = eventually(Duration::from_secs(20), "the HOST task on its port", || get_text(&url)).await;
    assert!(body.starts_with(tasks[0]["id"].as_str().unwrap()));

    // The check runs inside the container, where the file never exists.
    post_app(
        &platform,
        serde_json::json!({"id": "/sick", "instances": 1, "cpus": 0.1, "mem": 48,
            "container": {"type": "DOCKER", "docker": {"image": env.image, "network": "HOST"}},
            "portDefinitions": [{"port": 0}], "backoffSeconds": 0.5,
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "test -f /tmp/never"},
                "delaySeconds": 0, "gracePeriodSeconds": 0, "intervalSeconds": 1, "timeoutSeconds": 5,
                "maxConsecutiveFailures": 2}]}),
    )
    .await;
    let first = eventually(Duration::from_secs(30), "a running /sick task", || async {
        let app = get_app(&platform, "/sick").await?;
        app["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["state"] == "TASK_RUNNING")
            .map(|t| t["id"].as_str().unwrap().to_owned())
    })
    .await;
    eventually(
        Duration::from_secs(60),
        "the task killed by its COMMAND check and replaced",
        || async {
            let app = get_app(&platform, "/sick").await?;
            let failure = &app["lastTaskFailure"];
            let replaced = app["tasks"].as_array()?.iter().any(|t| t["id"] != first.as_str());
            (failure["taskId"] == first.as_str() && failure["state"] == "TASK_KILLED" && replaced).then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_docker_missing_image_fails_with_mesos_message_and_backs_off() {
    let (_env, platform, _address) = setup("mmissing").await;
    post_app(
        &platform,
        serde_json::json!({"id": "/missing", "instances": 1, "cpus": 0.1, "mem": 48, "backoffSeconds": 30,
            "container": {"type": "DOCKER", "docker": {"image": "paas-no-such-image:never"}}}),
    )
    .await;
    let failure = eventually(Duration::from_secs(30), "the launch failure", || async {
        let app = get_app(&platform, "/missing").await?;
        let failure = app["lastTaskFailure"].clone();
        failure.is_object().then_some(failure)
    })
    .await;
    assert_eq!(failure["state"], "TASK_FAILED");
    let message = failure["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Failed to launch container: Failed to run 'docker -H unix:///var/run/docker.sock pull paas-no-such-image:never'"),
        "{message}"
    );
    let queue: Value = crate::support::get_json(&platform.http, &format!("{}/v2/queue", platform.marathons[0].url())).await;
    let entry = queue["queue"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["app"]["id"] == "/missing")
        .expect("the app waits in the queue")
        .clone();
    assert!(
        entry["delay"]["timeLeftSeconds"].as_u64().unwrap() > 0 && entry["delay"]["overdue"] == false,
        "the app backs off before the next launch: {entry}"
    );
}

//! End to end: apps as Docker images on the sim, on one cluster. A locally built image
//! deployed with `paas app deploy` as a BRIDGE app and as a HOST app, served through the elb;
//! a slave's agent restarted under its running task container; two slaves killed with
//! `paas chaos` at 99.9% availability, their task containers gone with them; a slave's network
//! fault reaching its BRIDGE and HOST tasks; a missing image and a failing COMMAND health
//! check; `paas sim down` leaving no task container or network.
//!
//! Needs Docker and the sim base image (`paas sim images`); the test app image is built FROM
//! it (`tests/fixtures/app-image/`). Takes a few minutes.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Cluster, TaskContainer, eventually, http_get, status_json};

/// Marathon through the admin entry: status and JSON body.
fn marathon(cluster: &Cluster, path: &str) -> Option<(u16, Value)> {
    let (status, body) = http_get(&format!("127.0.0.1:{}", cluster.admin_port), "marathon.admin.paas.localhost", path)?;
    Some((status, serde_json::from_str(&body).ok()?))
}

fn deploy(cluster: &Cluster, file: &str, app: &Value) {
    std::fs::write(cluster.dir.path().join(file), serde_json::to_string_pretty(app).unwrap()).unwrap();
    cluster.paas(&["app", "deploy", file]);
}

/// The test app as a Marathon Docker app: `networks` BRIDGE (containerPort 8080 on any
/// offered hostPort; `args` names the port, since Marathon sets `$PORT0` to the hostPort) or
/// HOST (the app listens on `$PORT0`), with an HTTP health check.
fn app(id: &str, image: &str, bridge: bool) -> Value {
    let health = json!([{
        "protocol": "HTTP", "path": "/health", "portIndex": 0,
        "gracePeriodSeconds": 30, "intervalSeconds": 2, "timeoutSeconds": 2, "maxConsecutiveFailures": 3
    }]);
    if bridge {
        json!({
            "id": id, "instances": 3, "cpus": 0.1, "mem": 64, "args": ["8080"],
            "container": {
                "type": "DOCKER",
                "docker": { "image": image },
                "portMappings": [{ "containerPort": 8080, "hostPort": 0, "protocol": "tcp" }]
            },
            "networks": [{ "mode": "container/bridge" }],
            "healthChecks": health
        })
    } else {
        json!({
            "id": id, "instances": 3, "cpus": 0.1, "mem": 64,
            "container": { "type": "DOCKER", "docker": { "image": image } },
            "networks": [{ "mode": "host" }],
            "portDefinitions": [{ "port": 0, "protocol": "tcp" }],
            "healthChecks": health
        })
    }
}

/// Marathon's running task ids of an app.
fn task_ids(cluster: &Cluster, app: &str) -> BTreeSet<String> {
    marathon(cluster, &format!("/v2/apps/{app}/tasks"))
        .filter(|(status, _)| *status == 200)
        .and_then(|(_, body)| {
            body["tasks"]
                .as_array()
                .map(|tasks| tasks.iter().filter_map(|t| t["id"].as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default()
}

/// An app served through the elb by exactly `count` distinct tasks of its own.
fn served_by(cluster: &Cluster, app: &str, count: usize) -> BTreeSet<String> {
    eventually(Duration::from_secs(180), &format!("{app} served by {count} tasks"), || {
        let backends = cluster.backends(app, 40);
        // Each answer is "<task id> <hostname>": the task's own Mesos task id.
        let tasks: BTreeSet<String> = backends
            .iter()
            .filter_map(|b| b.split_whitespace().next())
            .filter(|task| task.starts_with(&format!("{app}.")))
            .map(str::to_string)
            .collect();
        (tasks.len() == count).then_some(tasks)
    })
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Node name → address, from `paas sim status`.
fn addresses(cluster: &Cluster) -> BTreeMap<String, String> {
    status_json(cluster)["status"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n["address"].as_str().unwrap().to_string()))
        .collect()
}

fn running(tasks: &[TaskContainer], app: &str) -> Vec<TaskContainer> {
    tasks
        .iter()
        .filter(|t| t.state == "running" && t.task_id.starts_with(&format!("{app}.")))
        .cloned()
        .collect()
}

#[test]
fn docker_apps_are_served_outlive_agent_restarts_die_with_their_slaves_and_leave_nothing() {
    let image = support::test_app_image();
    let vpc_cidr = support::free_vpc_cidr(30, 30);
    let cluster = Cluster::new(
        "dock",
        &vpc_cidr,
        "[mesos]\nagent_ping_timeout_secs = 1\nmax_agent_ping_timeouts = 3\n",
    );
    cluster.paas(&["sim", "up", "--output", "json"]);

    // A BRIDGE app of the local image: 3 tasks, each a container of its agent, served as
    // hello.paas.localhost.
    deploy(&cluster, "hello.json", &app("/hello", &image, true));
    let served = served_by(&cluster, "hello", 3);
    let containers = running(&cluster.task_containers(), "hello");
    let in_containers: BTreeSet<String> = containers.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(in_containers, served, "{containers:?}");
    for task in &containers {
        assert!(task.name.starts_with("mesos-"), "{task:?}");
        assert!(task.node.starts_with("slave-"), "{task:?}");
    }
    // `paas sim status` lists them under their agents.
    let status = status_json(&cluster);
    let listed: BTreeSet<String> = status["status"]["task_containers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|agent| {
            let node = agent["node"].as_str().unwrap().to_string();
            agent["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |t| format!("{node} {}", t["task_id"].as_str().unwrap()))
        })
        .collect();
    for task in &containers {
        assert!(listed.contains(&format!("{} {}", task.node, task.task_id)), "{listed:?}");
    }

    // The agent program restarted (not its machine): its running task container is
    // recovered, not restarted.
    let kept = containers[0].clone();
    let slave = format!("{}-{}", cluster.name, kept.node);
    let agent_address = format!("{}:5051", addresses(&cluster)[&kept.node]);
    let agent_state = || -> Option<Value> {
        let (status, body) = http_get(&agent_address, "agent", "/state")?;
        (status == 200).then(|| serde_json::from_str(&body).ok()).flatten()
    };
    let before = docker(&["exec", &slave, "pgrep", "-f", "^[^ ]*paas-node mesos-agent"]);
    let started_at = docker(&["inspect", "-f", "{{.State.StartedAt}}", &kept.id]);
    docker(&["exec", &slave, "pkill", "-KILL", "-f", "^[^ ]*paas-node mesos-agent"]);
    eventually(Duration::from_secs(60), "the restarted agent to report its task running", || {
        let pid = Command::new("docker")
            .args(["exec", &slave, "pgrep", "-f", "^[^ ]*paas-node mesos-agent"])
            .output()
            .ok()?;
        let pid = String::from_utf8_lossy(&pid.stdout).trim().to_string();
        if pid.is_empty() || pid == before {
            return None;
        }
        let state = agent_state()?;
        let has_task = state["frameworks"].as_array()?.iter().any(|f| {
            f["executors"].as_array().into_iter().flatten().any(|e| {
                e["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["id"].as_str() == Some(kept.task_id.as_str()) && t["state"].as_str() == Some("TASK_RUNNING"))
            })
        });
        has_task.then_some(())
    });
    assert_eq!(docker(&["inspect", "-f", "{{.State.Running}}", &kept.id]), "true");
    assert_eq!(docker(&["inspect", "-f", "{{.State.StartedAt}}", &kept.id]), started_at);
    assert!(
        task_ids(&cluster, "hello").contains(&kept.task_id),
        "Marathon lost the recovered task"
    );
    served_by(&cluster, "hello", 3);

    // Two slaves killed: the platform recovers at 99.9% through the elb, and no container of
    // a killed slave's tasks runs on.
    let before: Vec<TaskContainer> = cluster.task_containers();
    let out = cluster.paas(&[
        "chaos",
        "kill-slaves",
        "2",
        "--seed",
        "5",
        "--min-availability",
        "99.9",
        "--hold",
        "5s",
        "--recover-timeout",
        "150s",
        "--output",
        "json",
    ]);
    let run: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("chaos printed no JSON ({e}):\n{out}"));
    assert_eq!(run["passed"], true, "{run:#}");
    let fault = &run["faults"][0];
    assert!(fault["recovery_seconds"].as_f64().is_some(), "not recovered: {fault:#}");
    let killed: Vec<&str> = fault["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(killed.len(), 2, "{fault:#}");
    let after = cluster.task_containers();
    for task in before.iter().filter(|t| killed.contains(&t.node.as_str())) {
        let now = after.iter().find(|t| t.id == task.id);
        assert!(
            now.is_none_or(|t| t.state != "running"),
            "{task:?} of killed {} runs on: {now:?}",
            task.node
        );
    }
    served_by(&cluster, "hello", 3);

    // The same image as a HOST app: the task binds its offered port on the slave.
    deploy(&cluster, "hellohost.json", &app("/hellohost", &image, false));
    served_by(&cluster, "hellohost", 3);

    // A network fault on a slave reaches its tasks: with every packet from the cluster
    // dropped on the slave, an lb reaches neither its BRIDGE task (through the agent's
    // forwarder) nor its HOST task (in the slave's namespace).
    let mut by_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for app in ["hello", "hellohost"] {
        let (_, body) = marathon(&cluster, &format!("/v2/apps/{app}/tasks")).expect("the app's tasks");
        for task in body["tasks"].as_array().unwrap() {
            let host = task["host"].as_str().unwrap().to_string();
            let port = task["ports"][0].as_u64().unwrap();
            by_host.entry(host.clone()).or_default().push(format!("{app} {host}:{port}"));
        }
    }
    let (address, endpoints) = by_host
        .iter()
        .max_by_key(|(_, endpoints)| {
            endpoints
                .iter()
                .map(|e| e.split(' ').next().unwrap())
                .collect::<BTreeSet<_>>()
                .len()
        })
        .map(|(a, e)| (a.clone(), e.clone()))
        .unwrap();
    let node = addresses(&cluster)
        .into_iter()
        .find(|(_, a)| *a == address)
        .map(|(n, _)| n)
        .unwrap();
    let lb = format!("{}-lb-1", cluster.name);
    let reaches = |endpoint: &str| {
        let target = endpoint.split(' ').nth(1).unwrap();
        Command::new("docker")
            .args(["exec", &lb, "curl", "-sf", "-m", "2", &format!("http://{target}/health")])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(endpoints.iter().all(|e| reaches(e)), "{endpoints:?} before the fault");
    let fault = cluster.paas_spawn(&["chaos", "loss", "--percent", "100", "--node", &node, "--for", "8s"]);
    let slave = format!("{}-{node}", cluster.name);
    eventually(Duration::from_secs(30), "the loss rule in force on the slave", || {
        let rules = Command::new("docker")
            .args([
                "exec",
                &slave,
                "sh",
                "-c",
                "$(command -v iptables-legacy || command -v iptables) -w -S PAAS-CHAOS-IN",
            ])
            .output()
            .ok()?;
        String::from_utf8_lossy(&rules.stdout).contains("DROP").then_some(())
    });
    for endpoint in &endpoints {
        assert!(!reaches(endpoint), "{endpoint} on {node} answered through a 100% loss");
    }
    let output = fault.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "chaos loss: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // Healed: both apps at their count again (the agent may have been declared lost
    // meanwhile, 1 s x 3 pings here, and its tasks replaced).
    served_by(&cluster, "hello", 3);
    served_by(&cluster, "hellohost", 3);

    // A missing image: the task fails with a message, and Marathon backs off (30 s after the
    // first failure, so the delay is seen).
    let mut missing = app("/missing", "paas-test-missing:1", true);
    missing["instances"] = json!(1);
    missing["healthChecks"] = json!([]);
    missing["backoffSeconds"] = json!(30);
    deploy(&cluster, "missing.json", &missing);
    let failure = eventually(Duration::from_secs(60), "the missing image's task failure", || {
        let (_, body) = marathon(&cluster, "/v2/apps/missing").filter(|(s, _)| *s == 200)?;
        let failure = body["app"]["lastTaskFailure"].clone();
        (failure["state"] == "TASK_FAILED").then_some(failure)
    });
    let message = failure["message"].as_str().unwrap_or_default();
    assert!(message.contains("paas-test-missing:1"), "the failure names the image: {failure:#}");
    eventually(Duration::from_secs(60), "Marathon's backoff delay for /missing", || {
        let (_, body) = marathon(&cluster, "/v2/queue").filter(|(s, _)| *s == 200)?;
        body["queue"]
            .as_array()?
            .iter()
            .any(|entry| entry["app"]["id"] == "/missing" && entry["delay"]["timeLeftSeconds"].as_u64() > Some(0))
            .then_some(())
    });

    // A COMMAND health check, run inside the container, failing on one task: that task is
    // replaced.
    let mut checked = app("/checked", &image, true);
    checked["instances"] = json!(2);
    checked["healthChecks"] = json!([{
        "protocol": "COMMAND", "command": { "value": "test ! -e /tmp/unhealthy" },
        "gracePeriodSeconds": 30, "intervalSeconds": 2, "timeoutSeconds": 5, "maxConsecutiveFailures": 2
    }]);
    deploy(&cluster, "checked.json", &checked);
    let tasks = served_by(&cluster, "checked", 2);
    let sick = running(&cluster.task_containers(), "checked")
        .into_iter()
        .next()
        .expect("a running container of /checked");
    docker(&["exec", &sick.id, "touch", "/tmp/unhealthy"]);
    eventually(Duration::from_secs(90), "the unhealthy task replaced", || {
        let now = task_ids(&cluster, "checked");
        (now.len() == 2 && !now.contains(&sick.task_id)).then_some(())
    });
    assert!(tasks.contains(&sick.task_id));
    served_by(&cluster, "checked", 2);

    // Down leaves no task container and no network (task networks included).
    cluster.paas(&["sim", "down"]);
    assert_eq!(cluster.task_containers(), Vec::<TaskContainer>::new());
    assert_eq!(cluster.containers(), Vec::<String>::new());
    assert_eq!(cluster.networks(), Vec::<String>::new());
}

//! End to end: the admin screens of a sim cluster in a headless Chromium, reached as an
//! operator reaches them, by name through the admin entry (`marathon.admin.paas.localhost` and
//! `mesos.admin.paas.localhost` on the admin port; the browser resolves `*.localhost` to
//! 127.0.0.1 itself). On Marathon's screen www's link leads to www through the elb, an app is
//! created from JSON, scaled to 5 (the
//! tasks arrive through the event stream, without a reload), loses a task with a scale, is
//! refused a scale while a deployment holds it, and is destroyed; on Mesos' screen the 5
//! agents show their zones, Marathon's tasks and a task's stdout are read, and a slave killed
//! by `paas chaos` leaves the list once the master declares it lost (1 s × 3 missed pings).
//! Every page is screenshotted (1280×800 and a phone's width) under
//! `target/ui-screenshots/sim/` and must leave no error in the browser's console; on the
//! pages with controls, each control has a name and is reached with Tab.
//!
//! Needs Docker, the sim images (`paas sim images`), Debian's `chromium` and `chromium-driver`
//! (scripts/install-deps), and the `paas-node` binary (`cargo build --workspace --bins --tests`).
//! Boots one cluster; takes a few minutes.

#[path = "../node/tests/ui/screens/mod.rs"]
mod screens;
mod support;

use serde_json::{Value, json};

use screens::{Browser, marathon, mesos};
use support::{Cluster, status_json};

/// The app the operator creates: an HTTP server with a health check, writing a line that names
/// its task to stdout and one to stderr, so its sandbox can be read from Mesos' screen.
fn logging_web_app(id: &str) -> Value {
    json!({
        "id": id, "instances": 1, "cpus": 0.1, "mem": 32,
        "cmd": "echo ui-stdout-marker $MESOS_TASK_ID; echo ui-stderr-marker >&2; mkdir -p site && echo $MESOS_TASK_ID > site/index.html && cd site && exec python3 -m http.server $PORT0",
        "portDefinitions": [{ "port": 0, "name": "http" }],
        "healthChecks": [{ "protocol": "HTTP", "path": "/", "portIndex": 0, "gracePeriodSeconds": 10,
                           "intervalSeconds": 2, "timeoutSeconds": 2, "maxConsecutiveFailures": 3 }],
    })
}

/// A task of `app` as Marathon lists it, read through the admin entry.
fn marathon_task_ids(cluster: &Cluster) -> Vec<String> {
    let (status, body) = support::http_get(
        &format!("127.0.0.1:{}", cluster.admin_port),
        "marathon.admin.paas.localhost",
        "/v2/tasks",
    )
    .expect("GET /v2/tasks through the admin entry");
    assert_eq!(status, 200, "GET /v2/tasks: {body}");
    let tasks: Value = serde_json::from_str(&body).expect("/v2/tasks as JSON");
    let mut ids: Vec<String> = tasks["tasks"]
        .as_array()
        .expect("a task list")
        .iter()
        .map(|t| t["id"].as_str().expect("a task id").to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_admin_screens_of_a_sim_cluster_through_the_admin_entry() {
    let vpc_cidr = support::free_vpc_cidr(60, 30);
    let cluster = Cluster::new(
        "ui",
        &vpc_cidr,
        "[mesos]\nagent_ping_timeout_secs = 1\nmax_agent_ping_timeouts = 3\n",
    );
    cluster.paas(&["sim", "up", "--output", "json"]);
    let marathon_url = format!("http://marathon.admin.paas.localhost:{}", cluster.admin_port);
    let mesos_url = format!("http://mesos.admin.paas.localhost:{}", cluster.admin_port);
    let browser = Browser::start("sim").await;

    // Marathon's screen: the built-in www app is listed, running.
    let leader = marathon::open(&browser, &marathon_url).await;
    let known = support::eventually(std::time::Duration::from_secs(30), "a Marathon leader", || {
        cluster.marathon_leader()
    });
    assert_eq!(leader, known, "the header names Marathon's leader");
    browser
        .wait_for(
            "www running in the list",
            "const r = document.querySelector('tr[data-app=\"/www\"]'); return r && r.children[1].textContent === 'Running';",
        )
        .await;
    // www's link leads to www as the elb serves it, on the sim's apps port.
    let link = browser
        .eval("return document.querySelector('tr[data-app=\"/www\"] a[href^=\"http\"]').href;")
        .await;
    assert_eq!(
        link,
        json!(format!("http://www.paas.localhost:{}/", cluster.http_port)),
        "www's link"
    );
    let (status, body) =
        support::http_get(&format!("127.0.0.1:{}", cluster.http_port), "www.paas.localhost", "/").expect("GET of www's link");
    assert!(status == 200 && body.starts_with("www "), "www's link answered {status}: {body}");
    browser.screenshot("marathon-apps").await;
    browser.check_phone("marathon-apps").await;
    browser.check_keyboard("Marathon's apps list").await;

    // Create from JSON in the form, then scale to 5 with the button.
    let app = logging_web_app("/uitest");
    marathon::create(&browser, &app, Some("marathon-create-form")).await;
    browser.wait_for("one healthy task", &marathon::healthy_rows(1)).await;
    marathon::await_status(&browser, "Running").await;
    marathon::scale_until_healthy(&browser, 5).await;
    browser.screenshot("marathon-app-5-healthy").await;
    browser.check_phone("marathon-app").await;
    browser.check_keyboard("Marathon's app page").await;
    browser.assert_clean("Marathon: apps list, create form, app page", &[]).await;

    // Mesos' screen: 5 agents in their zones, Marathon and all its tasks, a task's stdout.
    mesos::open(&browser, &mesos_url).await;
    browser.screenshot("mesos-overview").await;
    browser.check_phone("mesos-overview").await;
    browser.check_keyboard("Mesos' overview").await;
    let agents = mesos::agents(&browser, 5).await;
    let status = status_json(&cluster);
    let nodes = status["status"]["nodes"].as_array().expect("nodes in the status");
    for agent in &agents {
        let node = nodes
            .iter()
            .find(|n| n["role"] == "slave" && n["address"] == agent.host.as_str())
            .unwrap_or_else(|| panic!("agent {agent:?} is no slave of the cluster: {status}"));
        assert_eq!(agent.zone, node["az"].as_str().unwrap(), "agent {agent:?} shows its node's zone");
    }
    browser.screenshot("mesos-agents").await;
    browser.check_phone("mesos-agents").await;
    let tasks = marathon_task_ids(&cluster);
    assert_eq!(tasks.len(), 3 + 5, "www's 3 and uitest's 5 tasks: {tasks:?}");
    mesos::marathon_tasks(&browser, &tasks).await;
    browser.screenshot("mesos-framework").await;
    browser.check_phone("mesos-framework").await;
    let task = tasks.iter().find(|t| t.starts_with("uitest.")).expect("a task of /uitest");
    mesos::read_sandbox(&browser, task, &format!("ui-stdout-marker {task}"), "ui-stderr-marker").await;
    browser.screenshot("mesos-task-sandbox").await;
    browser.check_phone("mesos-task-sandbox").await;
    browser.check_keyboard("Mesos' task page").await;
    browser.assert_clean("Mesos: overview, agents, framework, task", &[]).await;

    // A slave killed by chaos (left dead): once the master declares it lost, it leaves the list.
    mesos::agents(&browser, 5).await;
    let run = cluster.paas(&[
        "chaos",
        "kill-slaves",
        "1",
        "--no-heal",
        "--seed",
        "16",
        "--hold",
        "1s",
        "--recover-timeout",
        "120s",
        "--output",
        "json",
    ]);
    let run: Value = serde_json::from_str(&run).unwrap_or_else(|e| panic!("chaos printed no JSON ({e}):\n{run}"));
    let victim = run["faults"][0]["targets"][0].as_str().expect("the killed slave").to_owned();
    let address = nodes
        .iter()
        .find(|n| n["name"] == victim.as_str())
        .and_then(|n| n["address"].as_str())
        .unwrap_or_else(|| panic!("no node named {victim}: {status}"));
    let gone = agents
        .iter()
        .find(|a| a.host == address)
        .unwrap_or_else(|| panic!("{victim} ({address}) was not among the agents {agents:?}"));
    mesos::await_agent_gone(&browser, &gone.id, 4).await;
    browser.screenshot("mesos-agents-after-loss").await;
    browser.assert_clean("Mesos: agents page after the loss", &[]).await;

    // Back on Marathon's screen: kill one task with a scale, a 409, then destroy.
    browser.open(&format!("{marathon_url}/ui/#/apps/uitest")).await;
    browser.wait_for("five healthy tasks", &marathon::healthy_rows(5)).await;
    marathon::kill_one_and_scale(&browser).await;
    browser.wait_for("four healthy tasks", &marathon::healthy_rows(4)).await;
    browser.screenshot("marathon-app-4-after-kill").await;
    let stuck = json!({
        "id": "/stuck", "instances": 1, "cpus": 0.1, "mem": 16, "cmd": "exec sleep 1000",
        "constraints": [["hostname", "CLUSTER", "nowhere"]],
    });
    marathon::scaling_during_a_deployment_is_refused(&browser, &stuck, "marathon").await;
    browser.assert_clean("Marathon: app, 409, deployments", &[409]).await;
    browser.open(&format!("{marathon_url}/ui/#/apps/uitest")).await;
    browser.wait_for("four healthy tasks", &marathon::healthy_rows(4)).await;
    marathon::destroy(&browser, "/uitest").await;
    browser
        .wait_for(
            "www alone in the list",
            "const rows = document.querySelectorAll('tr[data-app]'); return rows.length === 1 && rows[0].dataset.app === '/www';",
        )
        .await;
    browser.screenshot("marathon-apps-after-destroy").await;
    browser.assert_clean("Marathon: apps list after destroy", &[]).await;
    // Marathon drops the app at once and kills its tasks in the deployment that follows, as
    // upstream does: /v2/tasks lists them until their TASK_KILLED arrives.
    support::eventually(std::time::Duration::from_secs(60), "only www's tasks left in /v2/tasks", || {
        let tasks = marathon_task_ids(&cluster);
        tasks.iter().all(|t| t.starts_with("www.")).then_some(tasks)
    });
}

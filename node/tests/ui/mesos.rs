//! Mesos' screen at the master's `/`: agents with their zones, the Marathon framework and its
//! tasks, a task's stdout read through the master's relay to its agent, and an agent leaving
//! the list once the master declares it lost.

use serde_json::{Value, json};

use super::screens::{Browser, mesos as screen};
use crate::marathon::Platform;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_agents_frameworks_tasks_and_a_sandbox() {
    let mut platform = Platform::start(1, 3).await;
    let marathon = platform.marathons[platform.leader().await].url();
    let app = json!({
        "id": "/echo", "instances": 2, "cpus": 0.1, "mem": 16,
        "cmd": "echo ui-stdout-marker $MESOS_TASK_ID; echo ui-stderr-marker >&2; exec sleep 1000",
    });
    let created = platform.http.post(format!("{marathon}/v2/apps")).json(&app).send().await.unwrap();
    assert_eq!(
        created.status(),
        201,
        "creating /echo: {}",
        created.text().await.unwrap_or_default()
    );
    let tasks = platform.await_running(platform.leader().await, "/echo", 2, false).await;

    let master = platform.mesos.leader_url().await.expect("a leading master");
    // The page carries a line of counts for readers without scripts.
    let page = platform
        .mesos
        .http
        .get(format!("{master}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Agents: 3. Frameworks: 1. Active tasks: 2."), "{page}");
    let browser = Browser::start("loopback").await;
    screen::open(&browser, &master).await;
    browser
        .wait_for(
            "2 active tasks and 6 cpus in total",
            "return document.querySelectorAll('#active-tasks tr[data-task]').length === 2
               && document.querySelector('tr[data-resource=cpus]').children[4].textContent === '6';",
        )
        .await;
    browser.screenshot("mesos-overview").await;

    // Agents with their zones.
    let agents = screen::agents(&browser, 3).await;
    let mut zones: Vec<&str> = agents.iter().map(|a| a.zone.as_str()).collect();
    zones.sort_unstable();
    assert_eq!(zones, ["a", "b", "c"], "each agent's zone attribute is shown: {agents:?}");
    browser.screenshot("mesos-agents").await;

    // The Marathon framework and its tasks.
    let expected: Vec<String> = tasks.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    screen::marathon_tasks(&browser, &expected).await;
    browser.screenshot("mesos-framework").await;

    // A task's stdout and stderr, read from its sandbox through the master.
    let task = &expected[0];
    screen::read_sandbox(&browser, task, &format!("ui-stdout-marker {task}"), "ui-stderr-marker").await;
    browser.screenshot("mesos-task-sandbox").await;
    browser.assert_clean("task page", &[]).await;

    // The relay refuses what it does not relay, and names it.
    let agent_id = platform.mesos.leader_state().await.unwrap()["slaves"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = platform.http.get(format!("{master}/agent/{agent_id}/flags")).send().await.unwrap();
    assert_eq!(refused.status(), 404);
    assert!(refused.text().await.unwrap().contains("'flags' is not relayed"));

    // An agent dies: once the master declares it lost (3 missed 1 s pings), it leaves the list.
    screen::agents(&browser, 3).await;
    let state = platform.mesos.leader_state().await.unwrap();
    let victim_port = platform.mesos.agents[2].port;
    let victim: Value = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pid"].as_str().is_some_and(|p| p.ends_with(&format!(":{victim_port}"))))
        .cloned()
        .expect("the third agent in the master's state");
    platform.mesos.agents[2].process.kill();
    screen::await_agent_gone(&browser, victim["id"].as_str().unwrap(), 2).await;
    browser.screenshot("mesos-agents-after-loss").await;
    browser.assert_clean("agents page after the loss", &[]).await;

    browser.click("#nav-overview").await;
    browser
        .wait_for("the overview", "return document.getElementById('resources') !== null;")
        .await;
    browser.check_phone("mesos-overview").await;

    // A master that does not lead sends the browser to the leader's screen.
    platform.mesos.start_master();
    let follower = platform.mesos.masters.last().unwrap().url();
    let leader_port = master.rsplit(':').next().unwrap().to_owned();
    let location = crate::support::eventually(std::time::Duration::from_secs(30), "the new master redirecting /", || {
        let (http, follower) = (platform.mesos.http.clone(), follower.clone());
        async move {
            let response = http.get(format!("{follower}/")).send().await.ok()?;
            (response.status() == 307).then(|| response.headers()["location"].to_str().unwrap().to_owned())
        }
    })
    .await;
    assert!(
        location.ends_with(&format!(":{leader_port}/")),
        "redirect to the leader {master}: {location}"
    );
}

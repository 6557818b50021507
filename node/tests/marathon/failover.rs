use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Platform, web_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_leader_killed_new_leader_keeps_apps_and_running_tasks() {
    let mut platform = Platform::start(2, 2).await;
    let leader = platform.leader().await;
    let base = platform.marathons[leader].url();
    platform
        .http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/www", 2, "/", "[]"))
        .send()
        .await
        .unwrap();
    let before: BTreeSet<String> = platform
        .await_running(leader, "/www", 2, true)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();

    let killed_at = Instant::now();
    platform.marathons[leader].process.kill();
    let survivor = 1 - leader;
    crate::support::eventually(Duration::from_secs(20), "the other Marathon leads", || async {
        let info = platform
            .http
            .get(format!("{}/v2/info", platform.marathons[survivor].url()))
            .send()
            .await
            .ok()?
            .json::<serde_json::Value>()
            .await
            .ok()?;
        (info["elected"] == true).then_some(())
    })
    .await;
    let took = killed_at.elapsed();
    assert!(
        took < Duration::from_secs(15),
        "new leader after {took:?}: more than the 3 s session timeout plus a few seconds"
    );
    let after: BTreeSet<String> = platform
        .await_running(survivor, "/www", 2, true)
        .await
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(before, after, "the running tasks are re-adopted, not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marathon_relaunches_the_tasks_of_a_killed_agent() {
    let mut platform = Platform::start(1, 2).await;
    let base = platform.marathons[0].url();
    platform
        .http
        .post(format!("{base}/v2/apps"))
        .body(web_app("/www", 2, "/", r#"[["hostname","MAX_PER","2"]]"#))
        .send()
        .await
        .unwrap();
    let tasks = platform.await_running(0, "/www", 2, true).await;
    let victim_agent = tasks[0]["slaveId"].as_str().unwrap().to_owned();
    let on_victim: BTreeSet<String> = tasks
        .iter()
        .filter(|t| t["slaveId"] == victim_agent.as_str())
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    // Kill the agent process that runs them: find it by its registered port.
    let state: serde_json::Value = platform.mesos.leader_state().await.unwrap();
    let port = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == victim_agent.as_str())
        .unwrap()["port"]
        .as_u64()
        .unwrap() as u16;
    let agent = platform.mesos.agents.iter_mut().find(|a| a.port == port).unwrap();
    agent.process.kill();
    // After the ping timeout the lost tasks are replaced on the surviving agent.
    crate::support::eventually(Duration::from_secs(60), "the lost tasks replaced on the other agent", || async {
        let app: serde_json::Value = crate::support::try_get_json(&platform.http, &format!("{base}/v2/apps/www")).await?;
        let tasks = app["app"]["tasks"].as_array()?;
        let healthy = app["app"]["tasksHealthy"] == 2;
        let moved = tasks
            .iter()
            .all(|t| t["slaveId"] != victim_agent.as_str() && !on_victim.contains(t["id"].as_str().unwrap_or("")));
        (healthy && tasks.len() == 2 && moved).then_some(())
    })
    .await;
}

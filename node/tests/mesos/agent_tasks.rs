//! What the agent does with a task beyond running a command: fetching over HTTP (and failing
//! to), and killing the task's whole process group on KILL and on agent shutdown.

use std::time::Duration;

use paas_node::mesos::v1::{self, TaskState};

use crate::support::eventually;
use crate::support::framework::{TestFramework, framework_info, task_info};
use crate::support::mesos::MesosCluster;

/// Serves `files` (name → bytes) over HTTP on 127.0.0.1; returns the base URL.
async fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut router = axum::Router::new();
    for (name, bytes) in files {
        router = router.route(&format!("/{name}"), axum::routing::get(move || async move { bytes.clone() }));
    }
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// Whether a process is alive (a zombie waiting to be reaped counts as dead).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or_default().trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn read_pid(path: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_agent_fetches_over_http_and_reports_fetch_failures() {
    let cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let fixtures = tempfile::tempdir().unwrap();
    std::fs::write(fixtures.path().join("inner.txt"), "zipped\n").unwrap();
    let zipped = std::process::Command::new("python3")
        .args(["-m", "zipfile", "-c", "site.zip", "inner.txt"])
        .current_dir(fixtures.path())
        .status()
        .expect("python3 to build a zip fixture");
    assert!(zipped.success());
    let zip = std::fs::read(fixtures.path().join("site.zip")).unwrap();
    let base = serve_files(vec![("site.zip", zip.clone()), ("raw.zip", zip)]).await;

    let master = cluster.leader_url().await.unwrap();
    let mut framework = TestFramework::subscribe(&master, framework_info("fetch")).await;
    let offer = framework.offers().await.remove(0);
    let mut extracting = task_info(
        &offer,
        "extracting",
        "cpus:0.25;mem:32",
        "cat inner.txt && test -f raw.zip && test ! -x raw.zip",
    );
    let mut failing = task_info(&offer, "unfetchable", "cpus:0.25;mem:32", "true");
    extracting.command.as_mut().unwrap().uris = vec![
        v1::CommandUri {
            value: format!("{base}/site.zip"),
            ..Default::default()
        },
        // `extract: false` keeps the archive as it is.
        v1::CommandUri {
            value: format!("{base}/raw.zip"),
            extract: Some(false),
            ..Default::default()
        },
    ];
    failing.command.as_mut().unwrap().uris = vec![v1::CommandUri {
        value: format!("{base}/missing.tgz"),
        ..Default::default()
    }];
    framework.accept(&offer, vec![extracting, failing]).await;

    framework.await_state("extracting", TaskState::Finished).await;
    let stdout = &cluster.agents[0].sandbox_stdouts("extracting")[0];
    assert_eq!(std::fs::read_to_string(stdout).unwrap(), "zipped\n");
    let failed = framework.await_state("unfetchable", TaskState::Failed).await;
    let message = failed.message.unwrap();
    assert!(
        message.starts_with("Failed to fetch all URIs") && message.contains("404"),
        "{message}"
    );
    assert_eq!(failed.reason.as_deref(), Some("REASON_CONTAINER_LAUNCH_FAILED"));

    // The agent's state, at the paths Mesos serves it.
    for path in ["/state", "/slave(1)/state"] {
        let state = cluster.get_json(&format!("{}{path}", cluster.agents[0].url())).await.unwrap();
        assert_eq!(state["id"], offer.agent_id.value.as_str(), "{path}");
        assert_eq!(state["attributes"]["zone"], "a");
        assert_eq!(state["resources"]["cpus"], 1.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_agent_kills_the_whole_process_group_on_kill_and_on_shutdown() {
    let mut cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.unwrap();
    let mut info = framework_info("groups");
    info.capabilities = vec![v1::Capability {
        kind: "TASK_KILLING_STATE".into(),
    }];
    let mut framework = TestFramework::subscribe(&master, info).await;
    let offer = framework.offers().await.remove(0);
    // Each task leaves a background child that ignores SIGTERM, so only a group SIGKILL ends it.
    let command = "(trap '' TERM; exec sleep 61) & echo $! > child; sleep 60";
    framework
        .launch(
            &offer,
            &[("killed", "cpus:0.25;mem:32", command), ("orphaned", "cpus:0.25;mem:32", command)],
        )
        .await;
    framework.await_state("killed", TaskState::Running).await;
    framework.await_state("orphaned", TaskState::Running).await;
    let agent = &cluster.agents[0];
    let child_of = |task: &str| {
        let sandbox = agent.sandbox_stdouts(task)[0].parent().unwrap().to_owned();
        async move {
            eventually(Duration::from_secs(5), "the task's child pid", || {
                let sandbox = sandbox.clone();
                async move { read_pid(&sandbox.join("child")) }
            })
            .await
        }
    };
    let killed_child = child_of("killed").await;
    let orphaned_child = child_of("orphaned").await;
    assert!(alive(killed_child) && alive(orphaned_child));

    framework.kill("killed").await;
    framework.await_state("killed", TaskState::Killed).await;
    let states: Vec<TaskState> = framework
        .statuses
        .iter()
        .filter(|s| s.task_id.value == "killed")
        .map(|s| s.state)
        .collect();
    assert_eq!(
        states,
        [TaskState::Starting, TaskState::Running, TaskState::Killing, TaskState::Killed],
        "a framework with TASK_KILLING_STATE sees TASK_KILLING first"
    );
    eventually(Duration::from_secs(5), "the killed task's child to die", || async move {
        (!alive(killed_child)).then_some(())
    })
    .await;
    assert!(alive(orphaned_child), "the other task is untouched");

    // SIGTERM to the agent: it kills its tasks' groups before exiting.
    let pid = cluster.agents[0].process.pid().unwrap();
    // SAFETY: kill(2) on the agent process this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let agent = &mut cluster.agents[0];
    eventually(Duration::from_secs(10), "the agent to exit and its task's child to die", || {
        let exited = agent.process.has_exited();
        async move { (exited && !alive(orphaned_child)).then_some(()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_agent_runs_command_health_checks_of_command_tasks() {
    let cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.unwrap();
    let mut framework = TestFramework::subscribe(&master, framework_info("checks")).await;
    let offer = framework.offers().await.remove(0);
    let check = |command: &str| {
        serde_json::to_value(v1::HealthCheck {
            command: Some(v1::CommandInfo {
                value: Some(command.into()),
                ..Default::default()
            }),
            delay_seconds: 0.0,
            interval_seconds: 0.5,
            timeout_seconds: 5.0,
            consecutive_failures: 2,
            grace_period_seconds: 0.0,
            ..v1::HealthCheck::default()
        })
        .unwrap()
    };
    // The check runs in the sandbox, beside the file the task writes there.
    let mut fine = task_info(&offer, "fine", "cpus:0.25;mem:32", "touch ready && sleep 600");
    fine.health_check = Some(check("test -f ready"));
    let mut sick = task_info(&offer, "sick", "cpus:0.25;mem:32", "sleep 600");
    sick.health_check = Some(check("test -f ready"));
    framework.accept(&offer, vec![fine, sick]).await;
    let killed = framework.await_state("sick", TaskState::Killed).await;
    assert_eq!(killed.healthy, Some(false), "killed by its health check");
    // The healthy update may come after the sick task's end: read (and acknowledge, or the
    // agent holds back the task's next update) until it does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        framework.acknowledge_new().await;
        let healthy = |s: &v1::TaskStatus| s.task_id.value == "fine" && s.state == TaskState::Running && s.healthy == Some(true);
        if framework.statuses.iter().any(healthy) {
            break;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        framework
            .next(left, "a healthy TASK_RUNNING of the fine task", |e| e.update.as_ref().map(|_| ()))
            .await;
    }
    assert!(
        framework
            .statuses
            .iter()
            .all(|s| s.task_id.value != "fine" || !s.state.is_terminal()),
        "the healthy task keeps running"
    );
}

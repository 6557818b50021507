//! A framework written against the documented v1 scheduler API drives one master and one agent:
//! subscribe, offers, launch, status updates, kill, acknowledge, reconcile, and the errors.

use std::time::Duration;

use futures::StreamExt as _;
use paas_node::mesos::recordio;
use paas_node::mesos::resources::Resources;
use paas_node::mesos::v1::{self, CallType, TaskState};

use crate::support::framework::{TestFramework, framework_info, task_info};
use crate::support::mesos::MesosCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_framework_launches_finishes_fails_kills_and_reconciles() {
    let cluster = MesosCluster::start(1, &["cpus:2;mem:1024;disk:1000;ports:[31000-31009]"]).await;
    let master = cluster.leader_url().await.expect("a leader");
    let mut framework = TestFramework::subscribe(&master, framework_info("v1-test")).await;
    assert_eq!(framework.subscribed.heartbeat_interval_seconds, Some(2.0));
    assert!(
        framework
            .subscribed
            .master_info
            .as_ref()
            .is_some_and(|m| m.port == u32::from(cluster.masters[0].port))
    );

    // The first offer is the whole agent, with its attributes.
    let offer = framework.offers().await.remove(0);
    let offered = Resources::from_v1(&offer.resources);
    assert_eq!(offered, Resources::parse("cpus:2;mem:1024;disk:1000;ports:[31000-31009]").unwrap());
    assert_eq!(offer.attributes, vec![v1::Attribute::text("zone", "a")]);

    // A task fetching an archive and an executable script, seeing Mesos' environment.
    let fixtures = tempfile::tempdir().unwrap();
    std::fs::create_dir(fixtures.path().join("app")).unwrap();
    std::fs::write(fixtures.path().join("app/inner.txt"), "from the archive\n").unwrap();
    let archive = fixtures.path().join("app.tar.gz");
    let tar = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(fixtures.path())
        .arg("app")
        .status()
        .unwrap();
    assert!(tar.success());
    std::fs::write(fixtures.path().join("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    let mut fetching = task_info(
        &offer,
        "fetching",
        "cpus:0.5;mem:64;ports:[31000-31001]",
        "./hello.sh > out && cat app/inner.txt >> out && \
         echo \"$PORT0 $PORT1 $PORT $PORTS $HOST $MESOS_TASK_ID $GREETING\" >> out && \
         test \"$MESOS_SANDBOX\" = \"$(pwd)\"",
    );
    fetching.command.as_mut().unwrap().uris = vec![
        v1::CommandUri {
            value: format!("file://{}", archive.display()),
            ..Default::default()
        },
        v1::CommandUri {
            value: fixtures.path().join("hello.sh").display().to_string(),
            executable: Some(true),
            ..Default::default()
        },
    ];
    fetching.command.as_mut().unwrap().environment = Some(v1::Environment {
        variables: vec![v1::Variable {
            name: "GREETING".into(),
            kind: None,
            value: Some("hi".into()),
        }],
    });
    let sleeper = task_info(&offer, "sleeper", "cpus:0.5;mem:64", "sleep 60");
    let failing = task_info(&offer, "failing", "cpus:0.25;mem:32", "echo oops >&2; exit 3");
    let too_big = task_info(&offer, "too-big", "cpus:5;mem:32", "true");
    framework.accept(&offer, vec![fetching, sleeper, failing, too_big]).await;

    let error = framework.await_state("too-big", TaskState::Error).await;
    assert!(error.message.unwrap().contains("more resources"));
    framework.await_state("fetching", TaskState::Finished).await;
    let out = std::fs::read_to_string(cluster.agents[0].sandbox_stdouts("fetching")[0].with_file_name("out")).unwrap();
    assert_eq!(
        out,
        "hello\nfrom the archive\n31000 31001 31000 31000,31001 127.0.0.1 fetching hi\n"
    );
    let failed = framework.await_state("failing", TaskState::Failed).await;
    assert_eq!(failed.message.as_deref(), Some("Command exited with status 3"));
    assert_eq!(failed.reason.as_deref(), Some("REASON_COMMAND_EXECUTOR_FAILED"));
    framework.await_state("sleeper", TaskState::Running).await;

    // While the sleeper runs, the master accounts for it exactly, and offers only the rest.
    let state = cluster.leader_state().await.unwrap();
    let used = &state["slaves"][0]["used_resources"];
    assert_eq!((used["cpus"].as_f64(), used["mem"].as_f64()), (Some(0.5), Some(64.0)), "{used}");
    // Offers made while the other tasks still ran hold part of the rest: decline them until
    // one offer holds all of it.
    let expected = Resources::parse("cpus:1.5;mem:960;disk:1000;ports:[31000-31009]").unwrap();
    let mut seen = Vec::new();
    let offer = loop {
        let offers = framework.offers().await;
        if let Some(offer) = offers.iter().find(|o| Resources::from_v1(&o.resources) == expected) {
            break offer.clone();
        }
        seen.extend(offers.iter().map(|o| Resources::from_v1(&o.resources).to_string()));
        assert!(seen.len() < 20, "no offer of exactly the rest; offered: {seen:?}");
        framework.decline(&offers, 0.0).await;
    };
    for partial in &seen {
        assert!(
            expected.contains(&Resources::parse(partial).unwrap()),
            "{partial} is not within the rest"
        );
    }

    // Reconciliation: implicit lists the running task; explicit answers for unknown tasks.
    framework.reconcile(&[]).await;
    let status = framework
        .next(Duration::from_secs(5), "implicit reconciliation", |e| {
            e.update.clone().map(|u| u.status)
        })
        .await;
    assert_eq!((status.task_id.value.as_str(), status.state), ("sleeper", TaskState::Running));
    assert_eq!(status.reason.as_deref(), Some("REASON_RECONCILIATION"));
    framework.reconcile(&[("no-such-task", Some(&offer.agent_id.value))]).await;
    let status = framework
        .next(Duration::from_secs(5), "explicit reconciliation", |e| {
            e.update.clone().map(|u| u.status)
        })
        .await;
    assert_eq!((status.task_id.value.as_str(), status.state), ("no-such-task", TaskState::Lost));

    framework.kill("sleeper").await;
    framework.await_state("sleeper", TaskState::Killed).await;
    let state = cluster.leader_state().await.unwrap();
    assert_eq!(state["slaves"][0]["used_resources"]["cpus"].as_f64(), Some(0.0));
    // The invalid task never existed; the other three ended.
    let completed = state["frameworks"][0]["completed_tasks"].as_array().unwrap();
    let mut ended: Vec<(&str, &str)> = completed
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["state"].as_str().unwrap()))
        .collect();
    ended.sort();
    assert_eq!(
        ended,
        [
            ("failing", "TASK_FAILED"),
            ("fetching", "TASK_FINISHED"),
            ("sleeper", "TASK_KILLED")
        ]
    );

    // TEARDOWN ends the framework.
    framework.send(framework.new_call(CallType::Teardown)).await;
    let state = cluster.leader_state().await.unwrap();
    assert_eq!(state["frameworks"].as_array().unwrap().len(), 0);
    assert_eq!(state["completed_frameworks"].as_array().unwrap().len(), 1);

    // A torn-down framework may not come back: its stream holds only ERROR.
    let mut call = v1::Call::new(CallType::Subscribe, Some(framework.id.clone()));
    call.subscribe = Some(v1::Subscribe {
        framework_info: framework.info.clone(),
        suppressed_roles: vec![],
    });
    let response = reqwest::Client::new()
        .post(format!("{master}/api/v1/scheduler"))
        .header("Content-Type", "application/json")
        .json(&call)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events: Vec<v1::Event> = recordio::decode_stream::<v1::Event, _, _, _>(response.bytes_stream())
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].error.as_ref().unwrap().message, "Framework has been removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mesos_malformed_calls_get_400_with_a_message() {
    let cluster = MesosCluster::start(1, &["cpus:1;mem:256"]).await;
    let master = cluster.leader_url().await.expect("a leader");
    let framework = TestFramework::subscribe(&master, framework_info("errors")).await;
    let http = reqwest::Client::new();
    let post = |body: &'static str, stream: Option<String>| {
        let mut request = http
            .post(format!("{master}/api/v1/scheduler"))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(stream) = stream {
            request = request.header("Mesos-Stream-Id", stream);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, body) = post("{not json", None).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("Failed to parse body into Call protobuf"), "{body}");
    let (status, body) = post(r#"{"type": "ACCEPT"}"#, None).await;
    assert_eq!(status, 400);
    assert!(body.contains("Expecting 'framework_id' to be present"), "{body}");
    let (status, body) = post(r#"{"type": "SUBSCRIBE"}"#, None).await;
    assert_eq!(status, 400);
    assert!(body.contains("Expecting 'subscribe' to be present"), "{body}");

    // A call without the stream id, or with another, is refused.
    let mut revive = framework.new_call(CallType::Revive);
    let body: &'static str = Box::leak(serde_json::to_string(&revive).unwrap().into_boxed_str());
    let (status, body_text) = post(body, None).await;
    assert_eq!(status, 400);
    assert!(body_text.contains("Mesos-Stream-Id"), "{body_text}");
    let (status, _) = post(body, Some("not-the-stream".into())).await;
    assert_eq!(status, 400);
    let (status, _) = post(body, Some(framework.stream_id.clone())).await;
    assert_eq!(status, 202);

    // ACCEPT without its body, and an ACKNOWLEDGE whose uuid is not base64.
    revive.kind = CallType::Accept;
    assert_eq!(framework.call(&revive).await.0, 400);
    let mut ack = framework.new_call(CallType::Acknowledge);
    ack.acknowledge = Some(v1::Acknowledge {
        agent_id: v1::Id::new("a"),
        task_id: v1::Id::new("t"),
        uuid: "%%%".into(),
    });
    let (status, body) = framework.call(&ack).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("uuid"), "{body}");
}

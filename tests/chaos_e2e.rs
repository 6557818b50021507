//! End to end: `paas chaos` on sim clusters whose masters declare a silent agent lost after
//! 1 s × 3 missed pings. A slave running `www` frozen for 30 s, the Marathon and Mesos leaders
//! killed, the seed's experiment (www at 5, kill 4 of 5 slaves) and one lb killed, each with
//! the platform's recovery checked from the JSON output and the availability targets of
//! docs/BENCHMARKS.md held through `--min-availability` (a run below its target does not
//! pass); on a second cluster, one AZ cut off, a scenario file, a replayed seed, interrupted
//! runs, and a fault left in force that `paas chaos heal` undoes.
//!
//! Needs Docker and the sim images (`paas sim images`). Takes a few minutes.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Cluster, eventually, status_json};

/// Runs `paas chaos <args>`; a run that fails (a target missed, no recovery) fails the test
/// with its journal kept beyond the cluster's temporary folder, since every request in it, with
/// its status and the task that answered, is what explains a missed target.
fn chaos(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = vec!["chaos"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--hold", "5s", "--recover-timeout", "120s", "--output", "json"]);
    let out = cluster.paas_output(&all);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let run: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("chaos {args:?} printed no JSON ({e}):\n{stdout}\n{stderr}"));
    if !out.status.success() {
        panic!(
            "paas chaos {args:?} failed; journal kept at {}:\n{run:#}\n{stderr}",
            keep_journal(&run)
        );
    }
    run
}

/// Copies a run's journal into Cargo's temporary folder for tests; where it went, or why not.
fn keep_journal(run: &Value) -> String {
    let Some(journal) = run["journal"].as_str().map(Path::new) else {
        return "nowhere (the run names no journal)".into();
    };
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(journal.file_name().unwrap_or_default());
    match std::fs::copy(journal, &kept) {
        Ok(_) => kept.display().to_string(),
        Err(e) => format!("nowhere ({e})"),
    }
}

/// The only fault of a run, after checking the run passed and the platform recovered.
fn recovered_fault(run: &Value) -> &Value {
    assert_eq!(run["passed"], true, "{run:#}");
    let faults = run["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{run:#}");
    let fault = &faults[0];
    assert!(fault["recovery_seconds"].as_f64().is_some(), "not recovered: {fault:#}");
    assert!(fault["requests"].as_u64().unwrap() > 0, "the probe sent nothing: {fault:#}");
    fault
}

/// The node that runs the `www` task answering through the elb (`www <task id> <ip>:<port>`).
fn node_running_www(cluster: &Cluster) -> String {
    // `sim up` waits for the platform; the lbs' routes to www follow within a moment.
    let body = eventually(Duration::from_secs(60), "www answering through the elb", || {
        cluster.get("www").filter(|(status, _)| *status == 200).map(|(_, body)| body)
    });
    let address = body
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.split(':').next())
        .unwrap_or_default()
        .to_string();
    status_json(cluster)["status"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"] == address.as_str())
        .and_then(|n| n["name"].as_str())
        .unwrap_or_else(|| panic!("no node has the address of {body:?}"))
        .to_string()
}

fn node_states(cluster: &Cluster) -> Vec<(String, String)> {
    status_json(cluster)["status"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["name"].as_str().unwrap().to_string(), n["state"].as_str().unwrap().to_string()))
        .collect()
}

/// A cluster whose masters declare a silent agent lost after 1 s × 3 missed pings, on a
/// free network of its own in `10.<first..first + count>.0.0/16`.
fn fast_failing_cluster(name: &str, first: u32, count: u32) -> Cluster {
    let vpc_cidr = support::free_vpc_cidr(first, count);
    let cluster = Cluster::new(
        name,
        &vpc_cidr,
        "[mesos]\nagent_ping_timeout_secs = 1\nmax_agent_ping_timeouts = 3\n",
    );
    cluster.paas(&["sim", "up", "--output", "json"]);
    cluster
}

/// The faults whose availability targets docs/BENCHMARKS.md gives, each held through
/// `--min-availability`. This test takes the machine's Docker tier to itself
/// (`.config/nextest.toml`), so no second cluster booting beside it skews what it measures.
#[test]
fn chaos_faults_are_measured_recovered_from_and_healed() {
    let cluster = fast_failing_cluster("chaos", 100, 100);

    // A slave running www frozen for 30 s: the lbs pass its task over (3 s to answer, then the
    // next), so next to no request fails while Mesos declares it lost and Marathon replaces it.
    let paused = node_running_www(&cluster);
    let run = chaos(
        &cluster,
        &["pause", "--node", &paused, "--for", "30s", "--min-availability", "99.9"],
    );
    let fault = recovered_fault(&run);
    assert_eq!(fault["targets"][0], paused.as_str(), "{fault:#}");

    // The leaders lost: another leads, and app traffic never notices.
    let run = chaos(&cluster, &["kill-leader", "marathon", "--min-availability", "100"]);
    let fault = recovered_fault(&run);
    assert_eq!(fault["leader_changes"]["marathon"], 1, "{fault:#}");
    let run = chaos(&cluster, &["kill-leader", "mesos", "--min-availability", "100"]);
    let fault = recovered_fault(&run);
    assert_eq!(fault["leader_changes"]["mesos"], 1, "{fault:#}");
    assert_eq!(fault["tasks_lost"], 0, "a master's loss costs no task: {fault:#}");

    // The seed's experiment: www at 5 instances, 4 of the 5 slaves killed. The survivor has
    // room for all 5, so every instance comes back on it.
    let run = chaos(
        &cluster,
        &["kill-slaves", "4", "--scale", "www=5", "--seed", "11", "--min-availability", "99.9"],
    );
    let fault = recovered_fault(&run);
    assert_eq!(fault["targets"].as_array().unwrap().len(), 4);
    let lost = fault["tasks_lost"].as_u64().unwrap();
    assert!(lost >= 1, "the killed slaves held instances: {fault:#}");
    assert!(
        fault["tasks_started"].as_u64().unwrap() >= lost,
        "lost tasks were relaunched: {fault:#}"
    );
    let phases: Vec<&str> = fault["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases.len(), 4, "recovery split into its phases: {fault:#}");
    // Healed: the killed slaves run again and rejoined.
    assert!(node_states(&cluster).iter().all(|(_, state)| state == "running"));
    eventually(Duration::from_secs(60), "5 agents registered after the heal", || {
        (status_json(&cluster)["status"]["health"]["agents_registered"] == 5).then_some(())
    });

    // One lb lost: the elb routes around it.
    let run = chaos(&cluster, &["kill-lbs", "1", "--min-availability", "99.9"]);
    let fault = recovered_fault(&run);
    assert!(fault["targets"][0].as_str().unwrap().starts_with("lb-"));
}

/// What asserts no availability target, on a cluster of its own that may run beside other
/// tests: an AZ cut off and healed, a scenario file, a replayed seed, an interrupted run, and a
/// fault left in force that `paas chaos heal` undoes.
#[test]
fn chaos_runs_are_scripted_replayed_interrupted_and_healed() {
    // 10.90-99: no other test's cluster takes these.
    let cluster = fast_failing_cluster("chaosrun", 90, 10);

    // One AZ cut off for 15 s: when healed, every app is back at its count in every lb.
    let run = chaos(&cluster, &["partition-az", "sim-b", "--for", "15s"]);
    let fault = recovered_fault(&run);
    let targets: Vec<&str> = fault["targets"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(
        targets.contains(&"master-2") && targets.iter().any(|t| t.starts_with("slave-")),
        "{targets:?}"
    );
    assert_eq!(fault["recovery_from_heal"], true);

    // A scenario file: the same steps and checks, in order.
    std::fs::write(
        cluster.dir.path().join("scenario.toml"),
        "name = \"lose a slave, then an lb\"\n[steady-state]\nrecover-within = \"110s\"\n\
         [[step]]\nfault = \"kill\"\nrole = \"slave\"\ncount = 1\n\
         [[step]]\nwait = \"2s\"\n\
         [[step]]\nfault = \"stop\"\nrole = \"lb\"\ncount = 1\nfor = \"5s\"\n\
         [[step]]\nassert = \"recovered\"\nwithin = \"60s\"\n",
    )
    .unwrap();
    let run: Value = serde_json::from_str(&cluster.paas(&["chaos", "run", "scenario.toml", "--hold", "3s", "-o", "json"])).unwrap();
    assert_eq!(run["passed"], true, "{run:#}");
    assert_eq!(run["faults"].as_array().unwrap().len(), 2, "{run:#}");
    let checks: Vec<&str> = run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(checks.iter().any(|c| c.starts_with("step 4: recovered")), "{checks:?}");
    let journal: Value = serde_json::from_str(&std::fs::read_to_string(run["journal"].as_str().unwrap()).unwrap()).unwrap();
    assert!(!journal["requests"].as_array().unwrap().is_empty());
    assert!(!journal["seconds"].as_array().unwrap().is_empty());
    let report = std::fs::read_to_string(run["report"].as_str().unwrap()).unwrap();
    assert!(report.starts_with("<svg") && report.contains("lose a slave, then an lb"));

    // A seed replays the same choice; a dry run changes nothing.
    let before = node_states(&cluster);
    let dry = |seed: &str| -> Value {
        serde_json::from_str(&cluster.paas(&["chaos", "kill-slaves", "2", "--seed", seed, "--dry-run", "-o", "json"])).unwrap()
    };
    assert_eq!(dry("5")["plans"][0]["plan"]["targets"], dry("5")["plans"][0]["plan"]["targets"]);
    assert_eq!(node_states(&cluster), before);

    // Ctrl-C during a fault: the run heals before it exits. Killed outright: the record stays
    // and `paas chaos heal` finishes the job.
    for (signal, healed_by_the_run) in [("-INT", true), ("-KILL", false)] {
        let child = cluster.paas_spawn(&["chaos", "pause", "--role", "slave", "--count", "1", "--for", "120s"]);
        eventually(Duration::from_secs(60), "the pause recorded", || {
            let status: Value = serde_json::from_str(&cluster.paas(&["chaos", "status", "-o", "json"])).unwrap();
            (status.as_array().unwrap().len() == 1).then_some(())
        });
        eventually(Duration::from_secs(30), "a paused slave", || {
            node_states(&cluster).iter().any(|(_, state)| state == "paused").then_some(())
        });
        let sent = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "an interrupted run is not a success");
        let status: Value = serde_json::from_str(&cluster.paas(&["chaos", "status", "-o", "json"])).unwrap();
        if healed_by_the_run {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("interrupted"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(status, serde_json::json!([]));
        } else {
            assert_eq!(status.as_array().unwrap().len(), 1, "{status:#}");
            cluster.paas(&["chaos", "heal"]);
        }
        assert!(
            node_states(&cluster).iter().all(|(_, state)| state == "running"),
            "{:?}",
            node_states(&cluster)
        );
    }

    // A fault left in force is recorded, refuses a new run, and `heal` undoes it.
    let run = chaos(&cluster, &["kill-lbs", "1", "--no-heal"]);
    let killed = run["faults"][0]["targets"][0].as_str().unwrap().to_string();
    let status: Value = serde_json::from_str(&cluster.paas(&["chaos", "status", "-o", "json"])).unwrap();
    assert_eq!(status.as_array().unwrap().len(), 1, "{status:#}");
    let refused = cluster.paas_output(&["chaos", "kill-lbs", "1"]);
    assert_eq!(refused.status.code(), Some(2), "a run over a fault in force is bad input");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("paas chaos heal"));
    cluster.paas(&["chaos", "heal"]);
    assert!(
        node_states(&cluster)
            .iter()
            .any(|(name, state)| *name == killed && state == "running"),
        "{killed} is running again"
    );
    let status: Value = serde_json::from_str(&cluster.paas(&["chaos", "status", "-o", "json"])).unwrap();
    assert_eq!(status, serde_json::json!([]));
}

#[test]
fn bad_chaos_input_is_refused_with_the_fix_and_touches_nothing() {
    // No cluster is needed: every one of these is refused before Docker is asked anything.
    let cluster = Cluster::new("chaosbad", "10.25.0.0/16", "");
    std::fs::write(
        cluster.dir.path().join("bad.toml"),
        "[[step]]\nwait = \"5s\"\n[[step]]\nfault = \"partition-az\"\naz = \"sim-a\"\n",
    )
    .unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &["chaos", "run", "bad.toml"],
            "bad.toml: step 2: fault = \"partition-az\" lasts until healed: add for = \"30s\"",
        ),
        (&["chaos", "run", "missing.toml"], "reading missing.toml: No such file"),
        (&["chaos", "pause", "--role", "slave"], "pause lasts until healed: give --for"),
        (
            &["chaos", "kill", "--role", "wizard"],
            "--role \"wizard\": use master, slave, lb or adminlb",
        ),
        (&["chaos", "kill-lbs", "1", "--rate", "0"], "0 is not in 1..=500"),
    ];
    for (args, message) in cases {
        let out = cluster.paas_output(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "paas {args:?}: {stderr}");
        assert!(stderr.contains(message), "paas {args:?}: {stderr:?} should name {message:?}");
    }
    assert!(!cluster.dir.path().join(".paas").exists(), "nothing was written");
}

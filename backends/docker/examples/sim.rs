//! Drives a sim cluster of the default spec (or `PAAS_SPEC`) without the `paas` CLI:
//! `cargo run -p paas-docker --example sim -- up|status|down|logs <node> [process]`.
//! `up` reports the seconds until ZooKeeper, Mesos and the lbs are healthy, and whether
//! Marathon answers.

use std::path::Path;
use std::time::{Duration, Instant};

use paas_core::ClusterSpec;
use paas_docker::sim::{Sim, ensure_images};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let spec = match std::env::var("PAAS_SPEC") {
        Ok(path) => ClusterSpec::load(Path::new(&path))?,
        Err(_) => ClusterSpec::default(),
    };
    let state = Path::new(".paas");
    match args.first().map(String::as_str) {
        Some("up") => {
            let image = ensure_images(&|_| {}).await?;
            let sim = Sim::connect(spec, state, Some(image)).await?;
            let started = Instant::now();
            let (plan, _) = sim.engine().apply(&sim.graph(), "example sim up", &|_| {}).await?;
            println!("applied {} in {:.1}s", plan.summary(), started.elapsed().as_secs_f64());
            let mut quorum_reported = false;
            loop {
                let health = paas_docker::health::probe(&sim.topology, sim.spec.sim.http_port).await;
                if health.zookeeper_ok() && !quorum_reported {
                    println!("ZooKeeper quorum: {:.1}s after up", started.elapsed().as_secs_f64());
                    quorum_reported = true;
                }
                if health.zookeeper_ok() && health.mesos_ok() && health.lbs_ok() {
                    println!(
                        "ZooKeeper quorum, Mesos leader with {} agents, lbs behind the elb: {:.1}s after up (Marathon leader: {:?})",
                        health.agents_registered,
                        started.elapsed().as_secs_f64(),
                        health.marathon_leader
                    );
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(180),
                    "not healthy: {:?}",
                    health.waiting_for()
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Some("status") => {
            let sim = Sim::connect(spec, state, None).await?;
            println!("{}", serde_json::to_string_pretty(&sim.status().await?)?);
        }
        Some("down") => {
            let sim = Sim::connect(spec, state, None).await?;
            let (plan, _) = sim.down(&|_| {}).await?;
            println!("removed: {}", plan.summary());
        }
        Some("logs") => {
            let sim = Sim::connect(spec, state, None).await?;
            let node = args.get(1).map(String::as_str).unwrap_or("master-1");
            print!("{}", sim.logs(node, args.get(2).map(String::as_str)).await?);
        }
        _ => anyhow::bail!("usage: sim up|status|down|logs <node> [process]"),
    }
    Ok(())
}

//! Random fault sequences on the default cluster's topology, in paused tokio time: once the
//! faults are healed (by the run, or by `heal` after an interrupted run) every node runs,
//! no network rule is left, nothing stays recorded, and the apps are back at their counts in
//! every lb; while a fault lasts, the platform recovers exactly when what is left can hold
//! the apps.

use std::sync::Arc;
use std::time::Duration;

use paas_core::engine::{ApplyOptions, Engine, StateStore};
use paas_core::memory::MemoryBackend;
use paas_core::{ClusterSpec, Graph, Role, Target, Topology};
use paas_scenarios::active::{self, ActiveStore};
use paas_scenarios::memory::{MemoryPlatform, ModelApp};
use paas_scenarios::platform::{NodeState, Platform};
use paas_scenarios::scenario::{self, Scenario, Step};
use paas_scenarios::session::SessionError;
use paas_scenarios::{Component, Fault, Selector, Session, SessionConfig};
use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

/// One agent offers 1 cpu; the apps need 1.1: two agents hold them, one does not.
const AGENT_CPUS: f64 = 1.0;

fn apps() -> Vec<ModelApp> {
    vec![
        ModelApp {
            id: "/www".into(),
            instances: 5,
            cpus: 0.1,
        },
        ModelApp {
            id: "/api".into(),
            instances: 3,
            cpus: 0.2,
        },
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// The default cluster (3 masters, 5 slaves, 2 lbs over 3 AZs) in memory.
async fn cluster(dir: &std::path::Path) -> (Arc<MemoryBackend>, Arc<MemoryPlatform>) {
    let spec = ClusterSpec::default();
    let topology = Topology::place(&spec, &Topology::sim_zones(spec.azs)).unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let engine = Engine::new(&*backend, StateStore::new(dir, &spec.name, "memory"), ApplyOptions::default());
    engine
        .apply(&Graph::desired(&spec, &topology, Target::Sim), "test", &|_| {})
        .await
        .unwrap();
    let platform = Arc::new(MemoryPlatform::new(
        backend.clone(),
        &spec.name,
        topology.quorum as usize,
        AGENT_CPUS,
        apps(),
    ));
    (backend, platform)
}

fn config() -> SessionConfig {
    SessionConfig {
        rate: 0,
        probe_timeout: Duration::from_secs(1),
        recover_timeout: Duration::from_secs(60),
        observe_every: Duration::from_secs(1),
        hold: Duration::from_secs(5),
        seed: 0,
    }
}

fn quiet(_: &str) {}

fn arb_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Master), Just(Role::Slave), Just(Role::Lb)]
}

fn arb_selector() -> impl Strategy<Value = Selector> {
    (arb_role(), 1u32..=3).prop_map(|(role, count)| Selector::role(role, count))
}

/// A fault with its duration (required for the faults that last until healed).
fn arb_step() -> impl Strategy<Value = Step> {
    let timed = 1u64..30;
    prop_oneof![
        (arb_selector(), any::<bool>()).prop_map(|(target, heal)| Step::Fault {
            fault: Fault::Kill { target },
            duration: None,
            heal
        }),
        (arb_selector(), timed.clone()).prop_map(|(target, s)| Step::Fault {
            fault: Fault::Stop { target },
            duration: Some(Duration::from_secs(s)),
            heal: true
        }),
        (arb_selector(), timed.clone()).prop_map(|(target, s)| Step::Fault {
            fault: Fault::Pause { target },
            duration: Some(Duration::from_secs(s)),
            heal: true
        }),
        (0usize..3, timed.clone()).prop_map(|(az, s)| Step::Fault {
            fault: Fault::PartitionAz {
                az: Topology::sim_zones(3)[az].clone()
            },
            duration: Some(Duration::from_secs(s)),
            heal: true
        }),
        (arb_selector(), timed.clone()).prop_map(|(target, s)| Step::Fault {
            fault: Fault::Loss { target, percent: 20.0 },
            duration: Some(Duration::from_secs(s)),
            heal: true
        }),
        Just(Step::Fault {
            fault: Fault::KillLeader {
                component: Component::Mesos
            },
            duration: None,
            heal: true
        }),
        prop_oneof![Just(Role::Lb), Just(Role::Master)].prop_map(|role| Step::Fault {
            fault: Fault::RestartRolling {
                target: Selector {
                    role: Some(role),
                    ..Selector::default()
                }
            },
            duration: None,
            heal: true
        }),
        timed.prop_map(|s| Step::Wait(Duration::from_secs(s))),
    ]
}

/// Whether the platform can hold every app while `targets` are down: a master quorum, an lb,
/// and two agents (the apps need 1.1 cpus at 1 cpu per agent).
fn capacity_suffices(targets: &[String]) -> bool {
    let down = |prefix: &str| targets.iter().filter(|t| t.starts_with(prefix)).count();
    down("master-") <= 1 && down("lb-") < 2 && 5 - down("slave-") >= 2
}

/// Every node runs, no rule or record is left, and the apps are back in every lb.
async fn assert_back_to_desired(platform: &MemoryPlatform, store: &ActiveStore) {
    let nodes = platform.nodes().await.unwrap();
    assert!(nodes.iter().all(|n| n.state == NodeState::Running), "{nodes:?}");
    assert!(platform.rules().is_empty(), "{:?}", platform.rules());
    assert!(store.load().unwrap().is_empty(), "records left: {:?}", store.load().unwrap());
    let lbs: Vec<String> = nodes.iter().filter(|n| n.role == Some(Role::Lb)).map(|n| n.name.clone()).collect();
    let mut missing = Vec::new();
    for _ in 0..10 {
        missing = platform.view().await.unrecovered(&lbs, &[], &[]);
        if missing.is_empty() {
            return;
        }
    }
    panic!("the desired state did not return: {missing:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn healed_faults_bring_back_the_desired_state_and_recovery_follows_capacity(
        steps in prop::collection::vec(arb_step(), 1..5),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let (_, platform) = cluster(dir.path()).await;
            let store = ActiveStore::new(dir.path(), "paas");
            let scenario = Scenario {
                name: "model".into(),
                seed: Some(seed),
                rate: None,
                recover_timeout: None,
                hypothesis: Default::default(),
                steps: steps.clone(),
            };
            let mut session = Session::start(platform.clone(), &store, config(), CancellationToken::new(), &quiet).await.unwrap();
            session.expect_steady(Duration::from_secs(30)).await.unwrap();
            scenario::run(&mut session, &*platform, &scenario, seed).await.unwrap();
            let leftovers = session.heal_remaining().await;
            assert!(leftovers.is_empty(), "{leftovers:?}");
            let journal = session.finish("model", false).await;
            // Nodes a kill without heal left down stay down for the steps after it.
            let mut down: Vec<String> = Vec::new();
            let faults = steps.iter().filter_map(|s| match s {
                Step::Fault { duration, heal, .. } => Some((duration.is_some(), *heal)),
                _ => None,
            });
            for (fault, (timed, heal)) in journal.faults.iter().zip(faults) {
                let during: Vec<String> = down.iter().chain(&fault.targets).cloned().collect();
                // Timed faults and rolling restarts are measured once their nodes are back.
                let expected = if timed || fault.description.starts_with("rolling") {
                    capacity_suffices(&down)
                } else {
                    capacity_suffices(&during)
                };
                assert_eq!(
                    fault.recovery_seconds.is_some(),
                    expected,
                    "{} on {:?} with {:?} down: {:?} {:?}",
                    fault.description, fault.targets, down, fault.unrecovered, fault.capacity_note
                );
                if !heal {
                    down.extend(fault.targets.iter().cloned());
                }
            }
            // A kill without heal leaves its nodes down, recorded: `heal` brings them back.
            active::heal_all(&*platform, &store).await.unwrap();
            assert_back_to_desired(&platform, &store).await;
        });
    }

    #[test]
    fn an_interrupted_run_leaves_a_record_that_heal_undoes(
        step in arb_step(),
        interrupt_after in 0u64..40,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let (_, platform) = cluster(dir.path()).await;
            let store = ActiveStore::new(dir.path(), "paas");
            let cancel = CancellationToken::new();
            let scenario = Scenario {
                name: "interrupted".into(),
                seed: Some(seed),
                rate: None,
                recover_timeout: None,
                hypothesis: Default::default(),
                steps: vec![step],
            };
            {
                let mut session = Session::start(platform.clone(), &store, config(), cancel.clone(), &quiet).await.unwrap();
                let stop = cancel.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(interrupt_after)).await;
                    stop.cancel();
                });
                let outcome = scenario::run(&mut session, &*platform, &scenario, seed).await;
                assert!(matches!(outcome, Ok(()) | Err(SessionError::Interrupted)), "{outcome:?}");
                // The process dies here: no heal_remaining, the session is dropped.
            }
            active::heal_all(&*platform, &store).await.unwrap();
            assert_back_to_desired(&platform, &store).await;
        });
    }
}

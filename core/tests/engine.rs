//! The engine's guarantees, checked against the in-memory backend with proptest.

use std::collections::BTreeMap;
use std::time::Duration;

use paas_core::engine::{Action, ApplyOptions, Engine, StateStore, meaning, plan};
use paas_core::memory::{Fault, MemoryBackend};
use paas_core::resource::ResourceId;
use paas_core::{Backend, ClusterSpec, Graph, Target, Topology};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn options() -> ApplyOptions {
    ApplyOptions {
        parallelism: 4,
        attempts: 3,
        retry_delay: Duration::from_millis(1),
    }
}

fn graph(spec: &ClusterSpec, target: Target) -> Graph {
    let topology = Topology::place(spec, &Topology::sim_zones(spec.azs)).unwrap();
    Graph::desired(spec, &topology, target)
}

/// The world as (id → fingerprints), failing on duplicate ids.
fn world(backend: &MemoryBackend) -> BTreeMap<ResourceId, paas_core::resource::Fingerprint> {
    let mut out = BTreeMap::new();
    for (_, o) in backend.snapshot() {
        assert!(
            out.insert(o.id.clone(), o.fingerprint.clone()).is_none(),
            "duplicate resource {}",
            o.id
        );
    }
    out
}

fn desired_world(g: &Graph) -> BTreeMap<ResourceId, paas_core::resource::Fingerprint> {
    g.resources().iter().map(|r| (r.id.clone(), r.fingerprint())).collect()
}

fn arb_spec() -> impl Strategy<Value = ClusterSpec> {
    ((0u32..3).prop_map(|m| 2 * m + 1), 1u32..12, 1u32..4, 1u32..=3, any::<bool>()).prop_map(|(masters, slaves, lbs, azs, single_nat)| {
        let mut spec = ClusterSpec::default();
        spec.nodes.masters = masters;
        spec.nodes.slaves = slaves;
        spec.nodes.lbs = lbs;
        spec.azs = azs;
        if single_nat {
            spec.aws.nat = paas_core::spec::NatMode::Single;
        }
        spec
    })
}

fn arb_target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Sim), Just(Target::Aws)]
}

fn no_events(_: paas_core::engine::Event) {}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn apply_then_plan_is_empty(spec in arb_spec(), target in arb_target()) {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new();
        let engine = Engine::new(&backend, StateStore::new(dir.path(), &spec.name, "memory"), options());
        let g = graph(&spec, target);
        runtime().block_on(async {
            let (first, _) = engine.apply(&g, "test", &no_events).await.unwrap();
            prop_assert_eq!(first.count(Action::Create), g.len());
            let observed = backend.list(&spec.name).await.unwrap();
            let again = plan(&g, &observed);
            prop_assert!(again.is_empty(), "second plan: {:?}", again.steps);
            // The state file records exactly the world.
            let state = engine.store().load().unwrap();
            prop_assert_eq!(state.resources.len(), g.len());
            Ok(())
        })?;
        prop_assert_eq!(world(&backend), desired_world(&g));
    }

    #[test]
    fn any_sequence_of_specs_converges_to_the_last(specs in prop::collection::vec(arb_spec(), 1..5), target in arb_target()) {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new();
        let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
        runtime().block_on(async {
            for spec in &specs {
                let g = graph(spec, target);
                engine.apply(&g, "test", &no_events).await.unwrap();
                prop_assert_eq!(world(&backend), desired_world(&g));
            }
            Ok(())
        })?;
    }

    #[test]
    fn an_interrupted_apply_is_finished_by_the_next_without_duplicates(
        spec in arb_spec(),
        target in arb_target(),
        call in 1u64..80,
        after_effect in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new();
        let engine = Engine::new(&backend, StateStore::new(dir.path(), &spec.name, "memory"), options());
        let g = graph(&spec, target);
        backend.inject(call, if after_effect { Fault::FailAfterEffect } else { Fault::Fail });
        runtime().block_on(async {
            // The first run may fail anywhere (or not at all, if `call` is past its last call).
            let _ = engine.apply(&g, "test", &no_events).await;
            backend.clear_faults();
            engine.apply(&g, "test", &no_events).await.unwrap();
            let observed = backend.list(&spec.name).await.unwrap();
            prop_assert!(plan(&g, &observed).is_empty());
            Ok(())
        })?;
        prop_assert_eq!(world(&backend), desired_world(&g));
    }

    #[test]
    fn destroy_leaves_nothing_even_after_an_interruption(spec in arb_spec(), target in arb_target(), call in 1u64..60) {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new();
        let engine = Engine::new(&backend, StateStore::new(dir.path(), &spec.name, "memory"), options());
        let g = graph(&spec, target);
        runtime().block_on(async {
            engine.apply(&g, "test", &no_events).await.unwrap();
            backend.inject(call, Fault::FailAfterEffect);
            let _ = engine.destroy(&spec.name, target, "test", &no_events).await;
            backend.clear_faults();
            engine.destroy(&spec.name, target, "test", &no_events).await.unwrap();
        });
        prop_assert!(backend.snapshot().is_empty());
        prop_assert!(engine.store().load().unwrap().resources.is_empty());
    }
}

#[test]
fn transient_failures_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let spec = ClusterSpec::default();
    let g = graph(&spec, Target::Aws);
    backend.inject(2, Fault::Transient);
    backend.inject(5, Fault::Transient);
    let retries = std::sync::Mutex::new(0);
    runtime()
        .block_on(engine.apply(&g, "test", &|e| {
            if matches!(e, paas_core::engine::Event::Retrying { .. }) {
                *retries.lock().unwrap() += 1;
            }
        }))
        .unwrap();
    assert_eq!(*retries.lock().unwrap(), 2);
    assert_eq!(world(&backend), desired_world(&g));
}

#[test]
fn a_failed_step_names_the_resource_and_keeps_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let g = graph(&ClusterSpec::default(), Target::Sim);
    // Call 1 is the list; call 2 creates the network; call 3 is the first node.
    backend.inject(3, Fault::Fail);
    let err = runtime().block_on(engine.apply(&g, "test", &no_events)).unwrap_err();
    let text = format!("{err:#}");
    assert!(text.starts_with("create node/") && text.contains("re-run to continue"), "{text}");
    let state = engine.store().load().unwrap();
    assert!(state.resources.contains_key(&ResourceId::parse("network/paas").unwrap()));
}

#[test]
fn a_lost_state_file_is_rebuilt_by_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = StateStore::new(dir.path(), "paas", "memory");
    let engine = Engine::new(&backend, store.clone(), options());
    let g = graph(&ClusterSpec::default(), Target::Aws);
    runtime().block_on(engine.apply(&g, "test", &no_events)).unwrap();
    let before = store.load().unwrap();
    std::fs::remove_file(store.path()).unwrap();
    let rebuilt = runtime().block_on(engine.refresh("paas", "test")).unwrap();
    assert_eq!(rebuilt.resources, before.resources);
}

#[test]
fn scaling_slaves_touches_only_slaves() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let mut spec = ClusterSpec::default();
    runtime()
        .block_on(engine.apply(&graph(&spec, Target::Aws), "test", &no_events))
        .unwrap();
    spec.nodes.slaves = 7;
    let (p, _) = runtime()
        .block_on(engine.apply(&graph(&spec, Target::Aws), "test", &no_events))
        .unwrap();
    let ids: Vec<String> = p.steps.iter().map(|s| format!("{} {}", s.action.as_str(), s.id)).collect();
    assert_eq!(ids, ["create node/slave-6", "create node/slave-7"]);
    spec.nodes.lbs = 3;
    let (p, _) = runtime()
        .block_on(engine.apply(&graph(&spec, Target::Aws), "test", &no_events))
        .unwrap();
    let ids: Vec<String> = p.steps.iter().map(|s| format!("{} {}", s.action.as_str(), s.id)).collect();
    assert_eq!(ids, ["create node/lb-3", "update load-balancer/elb"]);
}

#[test]
fn duplicates_left_behind_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let g = graph(&ClusterSpec::default(), Target::Sim);
    runtime().block_on(async {
        engine.apply(&g, "test", &no_events).await.unwrap();
        // Something created a second copy of a node behind the engine's back.
        let node = g.get(&ResourceId::parse("node/slave-1").unwrap()).unwrap();
        let deps = backend.list("paas").await.unwrap().into_iter().map(|o| (o.id.clone(), o)).collect();
        backend.create("paas", node, &deps).await.unwrap();
        let (p, _) = engine.apply(&g, "test", &no_events).await.unwrap();
        assert_eq!(p.steps.len(), 1);
        assert!(p.steps[0].reason.starts_with("duplicate"), "{:?}", p.steps[0]);
    });
    assert_eq!(world(&backend), desired_world(&g));
}

#[test]
fn lost_nodes_are_restores_and_a_spec_change_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = StateStore::new(dir.path(), "paas", "memory");
    let engine = Engine::new(&backend, store.clone(), options());
    let mut spec = ClusterSpec::default();
    let g = graph(&spec, Target::Sim);
    runtime().block_on(async {
        engine.apply(&g, "test", &no_events).await.unwrap();
        // Two machines are lost behind the engine's back.
        for name in ["node/slave-2", "node/lb-1"] {
            let lost = backend
                .list("paas")
                .await
                .unwrap()
                .into_iter()
                .find(|o| o.id.to_string() == name)
                .unwrap();
            backend.delete("paas", &lost).await.unwrap();
        }
    });
    let recorded: Vec<_> = store.load().unwrap().resources.into_values().collect();
    let p = runtime().block_on(engine.plan(&g)).unwrap();
    let m = meaning(&p, &g, &recorded);
    assert_eq!(m.restored_names(), ["slave-2", "lb-1"]);
    assert!(m.changes.is_empty(), "{}", m.describe_changes());

    // The same losses under a changed spec: the new slave is a change, the lost ones are not.
    spec.nodes.slaves = 6;
    let g = graph(&spec, Target::Sim);
    let p = runtime().block_on(engine.plan(&g)).unwrap();
    let m = meaning(&p, &g, &recorded);
    assert_eq!(m.restored_names(), ["slave-2", "lb-1"]);
    assert_eq!(m.describe_changes(), "create node/slave-6");

    // Restoring converges: the next plan is empty.
    runtime()
        .block_on(engine.apply(&graph(&ClusterSpec::default(), Target::Sim), "test", &no_events))
        .unwrap();
    let g = graph(&ClusterSpec::default(), Target::Sim);
    assert!(runtime().block_on(engine.plan(&g)).unwrap().is_empty());
}

#[test]
fn a_node_recorded_with_other_settings_is_a_change_not_a_restore() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = StateStore::new(dir.path(), "paas", "memory");
    let engine = Engine::new(&backend, store.clone(), options());
    let mut spec = ClusterSpec::default();
    runtime()
        .block_on(engine.apply(&graph(&spec, Target::Sim), "test", &no_events))
        .unwrap();
    runtime().block_on(async {
        let lost = backend
            .list("paas")
            .await
            .unwrap()
            .into_iter()
            .find(|o| o.id.to_string() == "node/slave-1")
            .unwrap();
        backend.delete("paas", &lost).await.unwrap();
    });
    // The lost slave would come back with more memory than it had: that is the user's change.
    spec.sim.memory.slave = 1024;
    let g = graph(&spec, Target::Sim);
    let recorded: Vec<_> = store.load().unwrap().resources.into_values().collect();
    let p = runtime().block_on(engine.plan(&g)).unwrap();
    let m = meaning(&p, &g, &recorded);
    assert!(m.restores.is_empty(), "{:?}", m.restored_names());
    assert!(m.describe_changes().contains("create node/slave-1"), "{}", m.describe_changes());
}

fn aws_graph_with(spec: &ClusterSpec, sha: char) -> Graph {
    let topology = Topology::place(spec, &Topology::sim_zones(spec.azs)).unwrap();
    let binary = paas_core::resource::NodeBinary {
        path: "/tmp/paas-node".into(),
        sha256: std::iter::repeat_n(sha, 64).collect(),
    };
    Graph::aws(spec, &topology, &binary)
}

#[test]
fn a_new_node_binary_rolls_the_instances_one_at_a_time_masters_first_and_keeps_the_elb() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let spec = ClusterSpec::default();
    runtime()
        .block_on(engine.apply(&aws_graph_with(&spec, 'a'), "test", &no_events))
        .unwrap();

    let events = std::sync::Mutex::new(Vec::new());
    let newer = aws_graph_with(&spec, 'b');
    let (plan, _) = runtime()
        .block_on(engine.apply(&newer, "test", &|e| events.lock().unwrap().push(e)))
        .unwrap();
    let rolled: Vec<&str> = plan.rolling.iter().map(|id| id.name()).collect();
    assert_eq!(rolled.len(), 11);
    assert_eq!(&rolled[..3], ["master-1", "master-2", "master-3"], "masters first: {rolled:?}");
    assert_eq!(rolled.last(), Some(&"adminlb-1"));
    let action = |id: &str| plan.steps.iter().find(|s| s.id.as_str() == id).map(|s| s.action);
    assert_eq!(action("load-balancer/elb"), Some(Action::Update), "the elb keeps serving");
    assert_eq!(action("dns-record/wildcard"), None);
    assert_eq!(action("dns-record/marathon-admin"), Some(Action::Update));
    assert_eq!(action("object/paas-node"), Some(Action::Replace));

    // Each node's replacement finishes before the next one starts, in the plan's order.
    let mut order = Vec::new();
    let mut running: Option<ResourceId> = None;
    for event in events.lock().unwrap().iter() {
        match event {
            paas_core::engine::Event::Started {
                id,
                action: Action::Replace,
            } if id.kind() == paas_core::resource::ResourceKind::Node => {
                assert!(running.is_none(), "{id} started while {running:?} was being replaced");
                running = Some(id.clone());
                order.push(id.name().to_string());
            }
            paas_core::engine::Event::Finished {
                id,
                action: Action::Replace,
                ..
            } if running.as_ref() == Some(id) => running = None,
            _ => {}
        }
    }
    assert_eq!(order, rolled);
    assert_eq!(world(&backend), desired_world(&newer));
}

#[test]
fn a_roll_interrupted_midway_is_finished_by_the_next_apply_with_no_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let engine = Engine::new(&backend, StateStore::new(dir.path(), "paas", "memory"), options());
    let spec = ClusterSpec::default();
    runtime()
        .block_on(engine.apply(&aws_graph_with(&spec, 'a'), "test", &no_events))
        .unwrap();
    let newer = aws_graph_with(&spec, 'b');
    // The list, the object's delete and create, then a few deletes and creates of the roll.
    backend.inject(9, Fault::Fail);
    assert!(runtime().block_on(engine.apply(&newer, "test", &no_events)).is_err());
    let again = runtime().block_on(engine.plan(&newer)).unwrap();
    assert!(
        !again.is_empty() && again.rolling.len() < 11,
        "some nodes were rolled: {:?}",
        again.rolling
    );
    runtime().block_on(engine.apply(&newer, "test", &no_events)).unwrap();
    assert_eq!(world(&backend), desired_world(&newer));
}

/// A gate that records what it was asked about and can refuse after some calls.
struct Gate {
    asked: std::sync::Mutex<Vec<String>>,
    refuse_from: usize,
}

#[async_trait::async_trait]
impl paas_core::engine::RollGate for Gate {
    async fn ready(&self, replaced: &ResourceId) -> Result<(), paas_core::BackendError> {
        let mut asked = self.asked.lock().unwrap();
        asked.push(replaced.name().to_string());
        if asked.len() > self.refuse_from {
            return Err(paas_core::BackendError::failed(
                "wait for the cluster to serve",
                replaced,
                "not serving",
            ));
        }
        Ok(())
    }
}

#[test]
fn a_roll_waits_on_the_gate_before_and_after_each_machine_and_stops_when_the_cluster_does_not_serve() {
    let dir = tempfile::tempdir().unwrap();
    let backend = MemoryBackend::new();
    let store = StateStore::new(dir.path(), "paas", "memory");
    let spec = ClusterSpec::default();
    runtime()
        .block_on(Engine::new(&backend, store.clone(), options()).apply(&aws_graph_with(&spec, 'a'), "test", &no_events))
        .unwrap();
    let newer = aws_graph_with(&spec, 'b');
    // Serving before master-1, after master-1, before master-2; not after master-2.
    let gate = Gate {
        asked: std::sync::Mutex::new(Vec::new()),
        refuse_from: 3,
    };
    let engine = Engine::new(&backend, store, options()).with_gate(&gate);
    let err = runtime().block_on(engine.apply(&newer, "test", &no_events)).unwrap_err();
    assert!(format!("{err:#}").contains("node/master-2"), "{err:#}");
    assert_eq!(*gate.asked.lock().unwrap(), ["master-1", "master-1", "master-2", "master-2"]);
    // master-3 was not touched: still on the old binary.
    let left = runtime().block_on(engine.plan(&newer)).unwrap();
    assert_eq!(left.rolling.first().map(|id| id.name()), Some("master-3"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Wherever a roll stops, at most one machine is missing, and the next apply finishes it.
    #[test]
    fn a_roll_stopped_at_any_call_has_at_most_one_machine_down_and_converges(
        spec in arb_spec(),
        call in 1u64..60,
        after_effect in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let backend = MemoryBackend::new();
        let engine = Engine::new(&backend, StateStore::new(dir.path(), &spec.name, "memory"), options());
        let (old, new) = (aws_graph_with(&spec, 'a'), aws_graph_with(&spec, 'b'));
        let nodes = |w: &BTreeMap<ResourceId, paas_core::resource::Fingerprint>| {
            w.keys().filter(|id| id.kind() == paas_core::resource::ResourceKind::Node).count()
        };
        let expected = nodes(&desired_world(&new));
        runtime().block_on(async {
            engine.apply(&old, "test", &no_events).await.unwrap();
            backend.inject(call, if after_effect { Fault::FailAfterEffect } else { Fault::Fail });
            let _ = engine.apply(&new, "test", &no_events).await;
            let mut live = std::collections::BTreeMap::new();
            for (_, o) in backend.snapshot() {
                live.insert(o.id.clone(), o.fingerprint.clone());
            }
            prop_assert!(nodes(&live) + 1 >= expected, "{} of {expected} machines left", nodes(&live));
            backend.clear_faults();
            engine.apply(&new, "test", &no_events).await.unwrap();
            Ok(())
        })?;
        prop_assert_eq!(world(&backend), desired_world(&new));
    }
}

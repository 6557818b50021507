//! How long planning takes for a large cluster: place, build the graph, plan against an empty
//! world (first apply) and against a world that already matches (every later run).

use criterion::{Criterion, criterion_group, criterion_main};
use paas_core::engine::plan;
use paas_core::graph::Graph;
use paas_core::resource::Resource;
use paas_core::{ClusterSpec, Observed, Target, Topology};

fn large_spec() -> ClusterSpec {
    let mut spec = ClusterSpec::default();
    spec.nodes.slaves = 1000;
    spec.azs = 3;
    spec
}

fn observed_of(resources: &[Resource]) -> Vec<Observed> {
    resources
        .iter()
        .enumerate()
        .map(|(i, r)| Observed {
            id: r.id.clone(),
            provider_id: format!("p-{i}"),
            fingerprint: r.fingerprint(),
            attrs: Default::default(),
        })
        .collect()
}

fn bench_plan(c: &mut Criterion) {
    let spec = large_spec();
    let zones: Vec<String> = ["eu-central-1a", "eu-central-1b", "eu-central-1c"].map(String::from).to_vec();
    for target in [Target::Aws, Target::Sim] {
        let topology = Topology::place(&spec, &zones).unwrap();
        let graph = Graph::desired(&spec, &topology, target);
        let observed = observed_of(graph.resources());
        c.bench_function(&format!("{target}: spec to plan, 1000 slaves, 3 AZs, empty world"), |b| {
            b.iter(|| {
                let topology = Topology::place(&spec, &zones).unwrap();
                let graph = Graph::desired(&spec, &topology, target);
                plan(&graph, &[])
            })
        });
        c.bench_function(&format!("{target}: spec to plan, 1000 slaves, 3 AZs, world up to date"), |b| {
            b.iter(|| {
                let topology = Topology::place(&spec, &zones).unwrap();
                let graph = Graph::desired(&spec, &topology, target);
                let p = plan(&graph, &observed);
                assert!(p.is_empty());
                p
            })
        });
    }
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);

use paas_core::engine::StateStore;
use paas_core::graph::Graph;

use crate::cli::{GlobalArgs, OutputFormat, PlanArgs};
use crate::context::Context;
use crate::output;

/// Plans against the recorded state of the target (no backend is contacted): what an apply
/// would do if the world is as last recorded. `paas sim plan`/`paas aws plan` re-read the
/// live backend instead.
pub async fn run(global: &GlobalArgs, args: PlanArgs) -> anyhow::Result<()> {
    let target = args.target.into();
    let ctx = Context::load_for(global, target)?;
    let topology = ctx.place(&ctx.offline_zones(target))?;
    let graph = Graph::desired(&ctx.spec, &topology, target);
    let store = StateStore::new(&ctx.state_dir, &ctx.spec.name, target.as_str());
    let state = store.load()?;
    let observed: Vec<_> = state.resources.into_values().collect();
    let plan = paas_core::engine::plan(&graph, &observed);
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&plan)?,
        OutputFormat::Text => {
            println!(
                "Plan for cluster `{}` on {target} ({}, against {}):",
                plan.cluster,
                ctx.spec_origin(),
                store.path().display()
            );
            print!("{}", output::render_plan(&plan, output::colour()));
        }
    }
    Ok(())
}

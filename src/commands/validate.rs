use paas_core::Role;

use crate::cli::{GlobalArgs, OutputFormat};
use crate::context::Context;

/// Checks the spec and summarises the cluster it describes.
pub fn run(global: &GlobalArgs) -> anyhow::Result<()> {
    let ctx = Context::load(global)?;
    let spec = &ctx.spec;
    let topology = ctx.place(&ctx.offline_zones(paas_core::Target::Sim))?;
    match ctx.output {
        OutputFormat::Json => ctx.print_json(&serde_json::json!({
            "valid": true,
            "spec": ctx.spec_origin(),
            "cluster": spec.name,
            "domain": spec.domain,
            "azs": spec.azs,
            "quorum": topology.quorum,
            "nodes": topology.nodes,
            "warnings": topology.warnings,
        })),
        OutputFormat::Text => {
            let count = |role| topology.nodes_of(role).count();
            println!(
                "{} is valid: cluster `{}` at {}, {} masters (quorum {}), {} slaves, {} lbs, {} adminlb over {} AZs.",
                ctx.spec_origin(),
                spec.name,
                spec.domain,
                count(Role::Master),
                topology.quorum,
                count(Role::Slave),
                count(Role::Lb),
                count(Role::AdminLb),
                spec.azs
            );
            Ok(())
        }
    }
}

//! Human-readable rendering: plans, tables, colour when the terminal wants it.

use std::io::IsTerminal;

use paas_core::engine::{Action, Plan};

/// Whether to colour output on stdout: a terminal, and `NO_COLOR` unset.
pub fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

fn paint(text: &str, action: Action, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match action {
        Action::Create => "32",
        Action::Update => "33",
        Action::Replace => "35",
        Action::Delete => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A plan as a readable diff: one line per step with its mark, resource and reason.
pub fn render_plan(plan: &Plan, colour: bool) -> String {
    if plan.is_empty() {
        return format!("Cluster {} on {} is up to date: nothing to change.\n", plan.cluster, plan.target);
    }
    let width = plan.steps.iter().map(|s| s.id.as_str().len()).max().unwrap_or(0);
    let mut out = String::new();
    for step in &plan.steps {
        let line = format!("  {} {:<width$}  {}", step.action.mark(), step.id.as_str(), step.reason);
        out.push_str(&paint(&line, step.action, colour));
        out.push('\n');
    }
    out.push_str(&format!("\n{}.\n", plan.summary()));
    out
}

/// The health lines `paas sim status` and `paas aws` show alike: the Mesos leader, the agents
/// registered of those expected, the Marathon leader (one line each, indented).
pub fn leader_lines(mesos_leader: Option<&str>, agents_registered: u32, agents_expected: u32, marathon_leader: Option<&str>) -> String {
    format!(
        "  mesos leader: {}\n  agents: {agents_registered} of {agents_expected} registered\n  marathon leader: {}\n",
        mesos_leader.unwrap_or("none"),
        marathon_leader.unwrap_or("none"),
    )
}

/// The lbs and whether each answers, as `lb-1=ok, lb-2=down`.
pub fn lbs_summary(lbs: &[(String, bool)]) -> String {
    let lbs: Vec<String> = lbs
        .iter()
        .map(|(n, ok)| format!("{n}={}", if *ok { "ok" } else { "down" }))
        .collect();
    lbs.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_core::graph::Graph;
    use paas_core::{ClusterSpec, Target, Topology};

    #[test]
    fn plan_lists_every_step_and_a_summary() {
        let spec = ClusterSpec::default();
        let topology = Topology::place(&spec, &Topology::sim_zones(3)).unwrap();
        let graph = Graph::desired(&spec, &topology, Target::Sim);
        let plan = paas_core::engine::plan(&graph, &[]);
        let text = render_plan(&plan, false);
        assert!(text.contains("+ node/master-1"), "{text}");
        assert!(text.contains("+ load-balancer/elb"), "{text}");
        assert!(text.ends_with("13 to create, 0 to update, 0 to replace, 0 to delete.\n"), "{text}");
        assert!(!text.contains('\x1b'));
    }

    #[test]
    fn health_lines_name_the_leaders_or_none_and_every_lb() {
        let text = leader_lines(Some("master@10.20.0.10:5050"), 3, 5, None);
        assert_eq!(
            text,
            "  mesos leader: master@10.20.0.10:5050\n  agents: 3 of 5 registered\n  marathon leader: none\n"
        );
        let lbs = [("lb-1".to_string(), true), ("lb-2".to_string(), false)];
        assert_eq!(lbs_summary(&lbs), "lb-1=ok, lb-2=down");
    }
}

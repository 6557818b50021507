//! Mesos' screen at the leading master's `/`: the steps of an operator looking at the cluster,
//! each read from the page.

use serde_json::Value;

use super::Browser;

/// An agent as its row on the agents page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRow {
    pub id: String,
    pub host: String,
    pub zone: String,
}

/// Opens `<mesos>/` and waits for the overview (the resources table) and the version.
pub async fn open(browser: &Browser, mesos: &str) {
    browser.open(&format!("{mesos}/")).await;
    browser
        .wait_for("the overview", "return document.getElementById('resources') !== null;")
        .await;
    browser
        .wait_for(
            "the version in the header",
            "return document.getElementById('version').textContent === '1.11.0';",
        )
        .await;
}

/// Goes to the agents page and waits until it lists `n` agents; returns them sorted by host.
pub async fn agents(browser: &Browser, n: usize) -> Vec<AgentRow> {
    browser.click("#nav-agents").await;
    await_agents(browser, n).await
}

/// Waits until the agents page (already shown) lists `n` agents; returns them sorted by host.
pub async fn await_agents(browser: &Browser, n: usize) -> Vec<AgentRow> {
    let rows = browser
        .wait_for(
            &format!("{n} agents listed"),
            &format!(
                "const rows = [...document.querySelectorAll('tr[data-agent]')];
                 return rows.length === {n} && rows.map(r => [r.dataset.agent, r.children[0].textContent, r.children[2].textContent]);"
            ),
        )
        .await;
    let mut agents: Vec<AgentRow> = rows
        .as_array()
        .expect("agent rows")
        .iter()
        .map(|row| AgentRow {
            id: text(&row[0]),
            host: text(&row[1]),
            zone: text(&row[2]),
        })
        .collect();
    agents.sort_by(|a, b| a.host.cmp(&b.host));
    agents
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// Goes to the frameworks page, checks that Marathon is listed, opens it and waits until its
/// active tasks are `expected` (any order).
pub async fn marathon_tasks(browser: &Browser, expected: &[String]) {
    browser.click("#nav-frameworks").await;
    browser
        .wait_for(
            "the marathon framework",
            "return document.querySelector('tr[data-framework] a')?.textContent === 'marathon';",
        )
        .await;
    browser.click("tr[data-framework] a").await;
    let mut sorted = expected.to_vec();
    sorted.sort();
    let wanted = serde_json::to_string(&sorted).expect("task ids as JSON");
    browser
        .wait_for(
            &format!("the framework's tasks {wanted}"),
            &format!(
                "const ids = [...document.querySelectorAll('#framework-tasks tr[data-task]')].map(r => r.dataset.task).sort();
                 return JSON.stringify(ids) === JSON.stringify({wanted});"
            ),
        )
        .await;
}

/// From the framework page, opens `task` and waits until its sandbox's stdout and stderr, read
/// through the master's relay to the agent's `/files/read`, contain the given markers.
pub async fn read_sandbox(browser: &Browser, task: &str, stdout: &str, stderr: &str) {
    browser.click(&format!("#framework-tasks tr[data-task=\"{task}\"] td a")).await;
    browser
        .wait_for(
            "the task's stdout and stderr",
            &format!(
                "return document.getElementById('stdout')?.textContent.includes({stdout:?})
                   && document.getElementById('stderr').textContent.includes({stderr:?});"
            ),
        )
        .await;
}

/// Waits until the agents page (already shown) no longer lists `agent` and lists `remaining`.
pub async fn await_agent_gone(browser: &Browser, agent: &str, remaining: usize) {
    browser
        .wait_for(
            &format!("agent {agent} gone from the list"),
            &format!(
                "const rows = [...document.querySelectorAll('tr[data-agent]')];
                 return rows.length === {remaining} && !rows.some(r => r.dataset.agent === '{agent}');"
            ),
        )
        .await;
}

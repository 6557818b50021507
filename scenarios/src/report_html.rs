//! The report as one HTML file to attach to an incident review: the timeline (the SVG of
//! [`crate::report::svg`], inline), a table per fault (availability, latency, recovery and its
//! phases), the checks, what happened when, and the seed to replay the run. Self-contained: no
//! script, stylesheet or image is loaded from anywhere.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

use crate::journal::{FaultResult, Journal};

/// Renders the journal as a standalone HTML document.
pub fn html(journal: &Journal) -> String {
    let verdict = if journal.interrupted {
        ("interrupted", "warn")
    } else if journal.passed {
        ("hypothesis held", "ok")
    } else {
        ("hypothesis FAILED", "bad")
    };
    let started = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(journal.started_unix_ms));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — chaos report</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{title}</h1>
<p class="verdict {class}">{verdict}</p>
<dl>
<dt>Started</dt><dd>{started}</dd>
<dt>Backend</dt><dd>{backend}</dd>
<dt>Traffic</dt><dd>{rate} requests/s to {vhosts} through {entry}</dd>
<dt>Seed</dt><dd><code id="seed">{seed}</code> — replay the same choices with <code>paas chaos … --seed {seed}</code></dd>
</dl>
<h2>Timeline</h2>
<div class="timeline">
"#,
        title = escape(&journal.name),
        class = verdict.1,
        verdict = verdict.0,
        backend = escape(&journal.backend),
        rate = journal.rate,
        vhosts = escape(&journal.vhosts.join(", ")),
        entry = escape(&journal.entry),
        seed = journal.seed,
    );
    out.push_str(&crate::report::svg(journal));
    out.push_str("</div>\n<h2>Faults</h2>\n");
    if journal.faults.is_empty() {
        out.push_str("<p>No fault was injected.</p>\n");
    }
    for (i, fault) in journal.faults.iter().enumerate() {
        fault_table(&mut out, i + 1, fault);
    }
    out.push_str("<h2>Checks</h2>\n");
    if journal.checks.is_empty() {
        out.push_str("<p>No check was made.</p>\n");
    } else {
        out.push_str("<table class=\"checks\"><thead><tr><th>Check</th><th>Result</th><th>Detail</th></tr></thead><tbody>\n");
        for check in &journal.checks {
            let (word, class) = if check.passed { ("passed", "ok") } else { ("FAILED", "bad") };
            let _ = writeln!(
                out,
                r#"<tr><td>{}</td><td class="{class}">{word}</td><td>{}</td></tr>"#,
                escape(&check.name),
                escape(&check.detail)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    if !journal.events.is_empty() {
        out.push_str("<h2>Events</h2>\n<table class=\"events\"><thead><tr><th>At</th><th>What</th></tr></thead><tbody>\n");
        for (t, what) in &journal.events {
            let _ = writeln!(out, "<tr><td class=\"num\">{t:.1} s</td><td>{}</td></tr>", escape(what));
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn fault_table(out: &mut String, n: usize, fault: &FaultResult) {
    let seconds = |s: f64| format!("{s:.1} s");
    let recovery = match fault.recovery_seconds {
        Some(s) => format!(
            "{} after the {}",
            seconds(s),
            if fault.recovery_from_heal { "heal" } else { "fault" }
        ),
        None => "did not recover".to_owned(),
    };
    let phases = if fault.phases.is_empty() {
        "—".to_owned()
    } else {
        fault
            .phases
            .iter()
            .map(|p| format!("{}: {}", escape(&p.name), seconds(p.seconds)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    let leaders = if fault.leader_changes.is_empty() {
        "none".to_owned()
    } else {
        fault
            .leader_changes
            .iter()
            .map(|(k, v)| format!("{}: {v}", escape(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let availability = fault.availability.map_or("—".to_owned(), |a| format!("{a:.2} %"));
    let mut rows: Vec<(&str, String)> = vec![
        ("Targets", escape(&fault.targets.join(", "))),
        (
            "Window",
            format!(
                "{} → {}{}",
                seconds(fault.start),
                seconds(fault.end),
                fault.heal.map_or(String::new(), |h| format!(" (healed at {})", seconds(h)))
            ),
        ),
        ("Availability", availability),
        (
            "Requests",
            format!(
                "{} scheduled, {} failed ({} not sent)",
                fault.requests, fault.failed, fault.not_sent
            ),
        ),
        (
            "Latency",
            format!(
                "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                fault.latency.p50, fault.latency.p99, fault.latency.max
            ),
        ),
        ("Recovery", recovery),
        ("Recovery phases", phases),
        ("Tasks", format!("{} lost, {} started", fault.tasks_lost, fault.tasks_started)),
        ("Leader changes", leaders),
        ("Answering tasks", fault.answering_tasks.to_string()),
    ];
    if !fault.unrecovered.is_empty() {
        rows.push(("Still missing", escape(&fault.unrecovered.join("; "))));
    }
    if let Some(note) = &fault.capacity_note {
        rows.push(("Capacity", escape(note)));
    }
    let _ = writeln!(out, "<h3>{n}. {}</h3>\n<table class=\"fault\"><tbody>", escape(&fault.description));
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th scope=\"row\">{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</tbody></table>\n");
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;color:#1d232a;max-width:1000px;margin:1rem auto;padding:0 1rem}\
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}h3{font-size:1rem}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#5b6773}dd{margin:0}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #d8dee4;vertical-align:top}\
th{color:#5b6773;font-weight:600;white-space:nowrap}.num{text-align:right;white-space:nowrap}\
.ok{color:#17733a;font-weight:600}.bad{color:#b42318;font-weight:600}.warn{color:#9a6700;font-weight:600}\
.verdict{font-size:1.1rem}table.fault th{width:11rem}.timeline{overflow-x:auto}.timeline svg{max-width:100%;height:auto}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::journal::{Check, Latency, Phase, Second};

    fn fault(description: &str, availability: Option<f64>, recovery: Option<f64>) -> FaultResult {
        FaultResult {
            description: description.into(),
            targets: vec!["slave-1".into(), "slave-2".into()],
            start: 10.0,
            end: 42.5,
            heal: None,
            requests: 650,
            failed: 13,
            not_sent: 2,
            availability,
            latency: Latency {
                p50: 3.2,
                p99: 48.0,
                max: 1200.0,
            },
            recovery_seconds: recovery,
            recovery_from_heal: false,
            phases: vec![
                Phase {
                    name: "agent declared lost".into(),
                    seconds: 4.1,
                },
                Phase {
                    name: "tasks relaunched".into(),
                    seconds: 9.7,
                },
            ],
            unrecovered: if recovery.is_none() {
                vec!["/www has 1 of 2".into()]
            } else {
                vec![]
            },
            capacity_note: None,
            tasks_lost: 2,
            tasks_started: 2,
            leader_changes: BTreeMap::from([("mesos".to_string(), 1)]),
            answering_tasks: 3,
        }
    }

    fn journal() -> Journal {
        Journal {
            name: "kill 2 slaves on <demo>".into(),
            backend: "sim".into(),
            seed: 424242,
            started_unix_ms: 1_764_756_000_000,
            entry: "127.0.0.1:8080".into(),
            rate: 20,
            vhosts: vec!["www.example.test".into()],
            interrupted: false,
            passed: false,
            faults: vec![
                fault("kill slaves slave-1, slave-2", Some(98.0), Some(13.8)),
                fault("partition master-1", None, None),
            ],
            checks: vec![
                Check::passed("availability ≥ 95 %", "98.00 % during the first fault"),
                Check::failed("recovery within 60 s", "partition master-1 did not recover"),
            ],
            events: vec![(10.0, "killed slave-1 & slave-2".into())],
            seconds: (0..5)
                .map(|t| Second {
                    t,
                    requests: 20,
                    ok: 20,
                    not_sent: 0,
                    p50_ms: 3.0,
                    p99_ms: 9.0,
                    max_ms: 12.0,
                    serving: BTreeMap::new(),
                })
                .collect(),
            views: vec![],
            requests: vec![],
        }
    }

    #[test]
    fn the_report_holds_the_timeline_each_fault_the_checks_and_the_seed() {
        let page = html(&journal());
        // Kept for a look in a browser, as the admin screens' screenshots are.
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/report-html-sample.html");
        std::fs::write(&sample, &page).unwrap_or_else(|e| panic!("writing {}: {e}", sample.display()));
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<svg "), "the timeline is inline");
        assert!(page.contains("paas chaos … --seed 424242"), "the seed to replay");
        assert!(page.contains("hypothesis FAILED"));
        // One table per fault, with its figures.
        assert_eq!(page.matches("<table class=\"fault\">").count(), 2);
        assert!(page.contains("98.00 %"));
        assert!(page.contains("p50 3.2 ms, p99 48.0 ms, max 1200.0 ms"));
        assert!(page.contains("13.8 s after the fault"));
        assert!(page.contains("agent declared lost: 4.1 s<br>tasks relaunched: 9.7 s"));
        assert!(page.contains("did not recover"));
        assert!(page.contains("/www has 1 of 2"));
        assert!(page.contains("mesos: 1"));
        assert!(page.contains("650 scheduled, 13 failed (2 not sent)"));
        // The checks with their outcomes.
        assert!(page.contains("<td class=\"bad\">FAILED</td><td>partition master-1 did not recover</td>"));
        assert!(page.contains("availability ≥ 95 %"));
        // Text is escaped, and nothing is loaded from elsewhere.
        assert!(page.contains("kill 2 slaves on &lt;demo&gt;") && !page.contains("<demo>"));
        assert!(page.contains("killed slave-1 &amp; slave-2"));
        for outside in ["<script", "<link", "<img", "src=", "url("] {
            assert!(!page.contains(outside), "the report loads nothing ({outside})");
        }
        assert!(page.contains("2025-12-03T10:00:00Z"), "the start in UTC");
    }

    #[test]
    fn a_run_without_faults_or_checks_says_so() {
        let mut j = journal();
        j.faults.clear();
        j.checks.clear();
        j.passed = true;
        let page = html(&j);
        assert!(page.contains("No fault was injected."));
        assert!(page.contains("No check was made."));
        assert!(page.contains("hypothesis held"));
    }
}

//! The report: one SVG picture of a run's timeline. Success rate, latency and serving
//! instances per second, with each fault's band shaded and its recovery marked.

use std::fmt::Write;

use crate::journal::Journal;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 24.0;
const PANEL: f64 = 150.0;
const GAP: f64 = 36.0;
const TOP: f64 = 76.0;
const COLOURS: [&str; 6] = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// Renders the journal as a standalone SVG document.
pub fn svg(journal: &Journal) -> String {
    let seconds = &journal.seconds;
    let span = (seconds.len().max(2) - 1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |t: f64| LEFT + t / span * plot;
    let panels = 3.0;
    let table_top = TOP + panels * (PANEL + GAP);
    let height = table_top + 24.0 + 18.0 * (journal.faults.len() + journal.checks.len()) as f64 + 16.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let verdict = if journal.interrupted {
        "interrupted"
    } else if journal.passed {
        "hypothesis held"
    } else {
        "hypothesis FAILED"
    };
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{} — {}</text>"#,
        escape(&journal.name),
        verdict
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="42" fill="#555">{} backend, seed {}, {} requests/s to {} through {}</text>"##,
        escape(&journal.backend),
        journal.seed,
        journal.rate,
        escape(&journal.vhosts.join(", ")),
        escape(&journal.entry)
    );

    let panel_top = |i: f64| TOP + i * (PANEL + GAP);
    // Fault bands and recovery marks, behind everything.
    for fault in &journal.faults {
        let until = fault.heal.unwrap_or(fault.end).max(fault.start + 0.5);
        for i in 0..3 {
            let top = panel_top(i as f64);
            let _ = writeln!(
                out,
                r##"<rect x="{:.1}" y="{top}" width="{:.1}" height="{PANEL}" fill="#d62728" fill-opacity="0.12"/>"##,
                x(fault.start),
                (x(until) - x(fault.start)).max(1.0)
            );
            if let Some(r) = fault.recovery_seconds {
                let at = if fault.recovery_from_heal {
                    fault.heal.unwrap_or(fault.start) + r
                } else {
                    fault.start + r
                };
                let _ = writeln!(
                    out,
                    r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#2ca02c" stroke-dasharray="4 3"/>"##,
                    x(at),
                    top + PANEL
                );
            }
        }
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#d62728">{}</text>"##,
            x(fault.start) + 2.0,
            panel_top(0.0) + 12.0,
            escape(&fault.description)
        );
    }

    // 1. Success rate.
    let top = panel_top(0.0);
    axes(&mut out, top, "success %", "100", "0");
    let points: Vec<(f64, f64)> = seconds
        .iter()
        .filter(|s| s.requests > 0)
        .map(|s| (x(s.t as f64), top + PANEL * (1.0 - f64::from(s.ok) / f64::from(s.requests))))
        .collect();
    polyline(&mut out, &points, "#2ca02c");

    // 2. Latency, p50 and p99, scaled to the largest p99.
    let top = panel_top(1.0);
    let max = seconds.iter().map(|s| s.p99_ms).fold(1.0, f64::max);
    axes(&mut out, top, "latency ms (p50, p99)", &format!("{max:.0}"), "0");
    for (pick, colour) in [
        (
            (|s: &crate::journal::Second| s.p50_ms) as fn(&crate::journal::Second) -> f64,
            "#1f77b4",
        ),
        (|s| s.p99_ms, "#ff7f0e"),
    ] {
        let points: Vec<(f64, f64)> = seconds
            .iter()
            .filter(|s| s.ok > 0)
            .map(|s| (x(s.t as f64), top + PANEL * (1.0 - pick(s) / max)))
            .collect();
        polyline(&mut out, &points, colour);
    }

    // 3. Serving instances per app.
    let top = panel_top(2.0);
    let most = seconds.iter().flat_map(|s| s.serving.values()).copied().max().unwrap_or(1).max(1);
    axes(&mut out, top, "serving instances", &most.to_string(), "0");
    let apps: Vec<&String> = seconds.last().map(|s| s.serving.keys().collect()).unwrap_or_default();
    for (i, app) in apps.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<(f64, f64)> = seconds
            .iter()
            .filter_map(|s| {
                s.serving
                    .get(*app)
                    .map(|n| (x(s.t as f64), top + PANEL * (1.0 - f64::from(*n) / f64::from(most))))
            })
            .collect();
        polyline(&mut out, &points, colour);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{}</text>"#,
            LEFT + 8.0 + 90.0 * i as f64,
            top + PANEL + 14.0,
            escape(app)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#555" text-anchor="end">seconds: 0 … {span:.0}</text>"##,
        WIDTH - RIGHT,
        top + PANEL + 14.0
    );

    // Summary lines.
    let mut y = table_top + 8.0;
    for f in &journal.faults {
        y += 18.0;
        let recovery = match f.recovery_seconds {
            Some(r) => format!(
                "recovered in {r:.1}s after the {}",
                if f.recovery_from_heal { "heal" } else { "fault" }
            ),
            None => "NOT recovered".into(),
        };
        let _ = writeln!(
            out,
            r#"<text x="{LEFT}" y="{y}">{}: availability {}{}, p99 {:.0} ms, {recovery}</text>"#,
            escape(&f.description),
            f.availability.map(|a| format!("{a:.3}%")).unwrap_or_else(|| "n/a".into()),
            if f.not_sent > 0 {
                format!(" (not sent: {})", f.not_sent)
            } else {
                String::new()
            },
            f.latency.p99
        );
    }
    for c in &journal.checks {
        y += 18.0;
        let _ = writeln!(
            out,
            r##"<text x="{LEFT}" y="{y}" fill="{}">{} {}: {}</text>"##,
            if c.passed { "#2ca02c" } else { "#d62728" },
            if c.passed { "✓" } else { "✗" },
            escape(&c.name),
            escape(&c.detail)
        );
    }
    out.push_str("</svg>\n");
    out
}

fn axes(out: &mut String, top: f64, label: &str, high: &str, low: &str) {
    let bottom = top + PANEL;
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{:.1}" height="{PANEL}" fill="none" stroke="#999"/>"##,
        WIDTH - LEFT - RIGHT
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="{:.1}" fill="#333">{}</text>"##,
        top - 6.0,
        escape(label)
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{high}</text>"##,
        LEFT - 6.0,
        top + 10.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{bottom}" text-anchor="end" fill="#555">{low}</text>"##,
        LEFT - 6.0
    );
}

fn polyline(out: &mut String, points: &[(f64, f64)], colour: &str) {
    if points.is_empty() {
        return;
    }
    let coords: Vec<String> = points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(
        out,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.5"/>"#,
        coords.join(" ")
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

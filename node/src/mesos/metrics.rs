//! `/metrics/snapshot`, as Mesos' `docs/monitoring.md` names the keys: a flat JSON object of
//! numbers. The master and the agent add their own keys; the resource and `system/*` keys are
//! computed the same way for both.

use std::collections::BTreeMap;

use super::resources::Resources;

/// Metric name → value, serialized as Mesos does (every value a double).
pub type Snapshot = BTreeMap<String, f64>;

/// The scalar resources every snapshot reports, total and used.
const RESOURCES: [&str; 4] = ["cpus", "disk", "gpus", "mem"];

/// `<prefix>/<resource>_total`, `_used` and `_percent` (a fraction of 1, 0 when the total is
/// 0), plus the revocable ones, always 0: the sim has no revocable resources.
pub fn resources(snapshot: &mut Snapshot, prefix: &str, total: &Resources, used: &Resources) {
    for name in RESOURCES {
        let (total, used) = (total.scalar(name), used.scalar(name));
        let percent = if total > 0.0 { used / total } else { 0.0 };
        snapshot.insert(format!("{prefix}/{name}_total"), total);
        snapshot.insert(format!("{prefix}/{name}_used"), used);
        snapshot.insert(format!("{prefix}/{name}_percent"), percent);
        for suffix in ["total", "used", "percent"] {
            snapshot.insert(format!("{prefix}/{name}_revocable_{suffix}"), 0.0);
        }
    }
}

/// `system/cpus_total`, `system/mem_total_bytes` and `system/mem_free_bytes` of the machine (or
/// container) the program runs on, read from the kernel; a key whose source cannot be read is
/// left out rather than reported wrong.
pub fn system(snapshot: &mut Snapshot) {
    if let Ok(cpus) = std::thread::available_parallelism() {
        snapshot.insert("system/cpus_total".into(), cpus.get() as f64);
    }
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return;
    };
    let kib = |key: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok()
        })
    };
    if let Some(total) = kib("MemTotal") {
        snapshot.insert("system/mem_total_bytes".into(), total * 1024.0);
    }
    // Mesos reads MemFree, not MemAvailable.
    if let Some(free) = kib("MemFree") {
        snapshot.insert("system/mem_free_bytes".into(), free * 1024.0);
    }
}

/// Seconds since `start` (seconds since the epoch).
pub fn uptime_secs(start: f64) -> f64 {
    (super::v1::now_seconds() - start).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_a_fraction_and_zero_without_total() {
        let mut snapshot = Snapshot::new();
        let total = Resources::parse("cpus:4;mem:1000").unwrap();
        let used = Resources::parse("cpus:1;mem:250").unwrap();
        resources(&mut snapshot, "master", &total, &used);
        assert_eq!(snapshot["master/cpus_total"], 4.0);
        assert_eq!(snapshot["master/cpus_used"], 1.0);
        assert_eq!(snapshot["master/cpus_percent"], 0.25);
        assert_eq!(snapshot["master/mem_percent"], 0.25);
        assert_eq!(snapshot["master/gpus_total"], 0.0);
        assert_eq!(snapshot["master/gpus_percent"], 0.0);
        assert_eq!(snapshot["master/mem_revocable_total"], 0.0);
    }

    #[test]
    fn system_memory_is_read_from_the_kernel() {
        let mut snapshot = Snapshot::new();
        system(&mut snapshot);
        assert!(snapshot["system/cpus_total"] >= 1.0);
        let total = snapshot["system/mem_total_bytes"];
        let free = snapshot["system/mem_free_bytes"];
        assert!(total > 0.0 && free <= total, "total {total}, free {free}");
    }
}

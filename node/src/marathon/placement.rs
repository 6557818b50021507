//! Where to launch tasks: a pure function of offers, an app's needs and constraints, and the
//! tasks it already runs.

use std::collections::BTreeMap;

use super::app::{AppSpec, Constraint, Operator};

/// What an offer holds, reduced to what placement reads.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferView {
    pub hostname: String,
    pub attributes: BTreeMap<String, String>,
    pub cpus: f64,
    pub mem: f64,
    pub disk: f64,
    /// Free port ranges, inclusive.
    pub ports: Vec<(u64, u64)>,
}

/// Where a task of the app already runs (or is being launched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub hostname: String,
    pub attributes: BTreeMap<String, String>,
}

/// One task to launch: which offer, which host ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub offer: usize,
    pub ports: Vec<u64>,
}

fn field<'a>(hostname: &'a str, attributes: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    if name == "hostname" {
        Some(hostname)
    } else {
        attributes.get(name).map(String::as_str)
    }
}

fn full_match(pattern: &str, value: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|r| r.is_match(value))
}

/// Whether a task may go on `offer` given the tasks `placed` so far and the values of the
/// constrained fields seen over all offers (for GROUP_BY).
fn allowed(constraint: &Constraint, offer: &OfferView, placed: &[Placed], known_values: &[String]) -> bool {
    let value = field(&offer.hostname, &offer.attributes, &constraint.field);
    let count_of = |v: &str| {
        placed
            .iter()
            .filter(|p| field(&p.hostname, &p.attributes, &constraint.field) == Some(v))
            .count()
    };
    match constraint.operator {
        Operator::Unique => value.is_some_and(|v| count_of(v) == 0),
        Operator::Cluster => value.is_some() && value == constraint.value.as_deref(),
        Operator::Like => value.is_some_and(|v| full_match(constraint.value.as_deref().unwrap_or(""), v)),
        Operator::Unlike => value.is_none_or(|v| !full_match(constraint.value.as_deref().unwrap_or(""), v)),
        Operator::MaxPer => {
            let max = constraint.value.as_deref().and_then(|n| n.parse::<usize>().ok()).unwrap_or(1);
            value.is_some_and(|v| count_of(v) < max)
        }
        // Spread evenly: only a value with the fewest tasks may take the next one.
        Operator::GroupBy => value.is_some_and(|v| {
            let fewest = known_values.iter().map(|k| count_of(k)).min().unwrap_or(0);
            count_of(v) <= fewest
        }),
    }
}

/// Takes `count` ports out of `ranges`: the requested ones if `require` (all must be free),
/// else the lowest free. `None` when they do not fit.
fn take_ports(ranges: &mut Vec<(u64, u64)>, requested: &[u64], require: bool) -> Option<Vec<u64>> {
    let mut taken = Vec::new();
    let mut free: Vec<u64> = Vec::new();
    for &(b, e) in ranges.iter() {
        free.extend(b..=e.min(b + 4096));
    }
    for &want in requested {
        let port = if require && want != 0 {
            free.iter().position(|&p| p == want)?
        } else {
            (!free.is_empty()).then_some(0)?
        };
        taken.push(free.remove(port));
    }
    // Give the rest back as ranges.
    let mut rebuilt: Vec<(u64, u64)> = Vec::new();
    for p in free {
        match rebuilt.last_mut() {
            Some((_, e)) if *e + 1 == p => *e = p,
            _ => rebuilt.push((p, p)),
        }
    }
    // Keep the part of each range beyond the window we expanded.
    for &(b, e) in ranges.iter() {
        if e > b + 4096 {
            rebuilt.push((b + 4097, e));
        }
    }
    rebuilt.sort();
    *ranges = rebuilt;
    Some(taken)
}

/// Chooses offers for up to `wanted` new tasks of `app`, consuming what each launch uses from
/// `offers` so several apps can share one round. `placed` are the app's tasks already running
/// or staged.
pub fn place(app: &AppSpec, wanted: u32, offers: &mut [OfferView], placed: &[Placed]) -> Vec<Launch> {
    let mut placed = placed.to_vec();
    let mut launches = Vec::new();
    let mut known: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for c in &app.constraints {
        let mut values: Vec<String> = offers
            .iter()
            .filter_map(|o| field(&o.hostname, &o.attributes, &c.field).map(str::to_owned))
            .collect();
        values.extend(
            placed
                .iter()
                .filter_map(|p| field(&p.hostname, &p.attributes, &c.field).map(str::to_owned)),
        );
        values.sort();
        values.dedup();
        known.insert(c.field.as_str(), values);
    }
    while (launches.len() as u32) < wanted {
        // Among the offers that fit, the agent with the fewest of the app's tasks: spreading
        // the instances means losing one agent costs as few of them as possible.
        let choice = (0..offers.len())
            .filter(|&i| {
                let o = &offers[i];
                o.cpus + 1e-9 >= app.cpus
                    && o.mem + 1e-9 >= app.mem
                    && o.disk + 1e-9 >= app.disk
                    && app.constraints.iter().all(|c| allowed(c, o, &placed, &known[c.field.as_str()]))
                    && take_ports(&mut o.ports.clone(), &app.ports, app.require_ports).is_some()
            })
            .min_by_key(|&i| placed.iter().filter(|p| p.hostname == offers[i].hostname).count());
        let Some(i) = choice else { break };
        let offer = &mut offers[i];
        let ports = take_ports(&mut offer.ports, &app.ports, app.require_ports).expect("checked above");
        offer.cpus -= app.cpus;
        offer.mem -= app.mem;
        offer.disk -= app.disk;
        placed.push(Placed {
            hostname: offer.hostname.clone(),
            attributes: offer.attributes.clone(),
        });
        launches.push(Launch { offer: i, ports });
    }
    launches
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::marathon::app::{check, parse_definition};

    fn app(constraints: &str, cpus: f64, ports: usize) -> AppSpec {
        let ports = vec!["{\"port\":0}"; ports].join(",");
        let text = format!(r#"{{"id":"/a","cmd":"x","cpus":{cpus},"mem":16,"constraints":{constraints},"portDefinitions":[{ports}]}}"#);
        check(&parse_definition(text.as_bytes(), None).unwrap()).unwrap()
    }

    fn offer(host: &str, zone: &str, cpus: f64) -> OfferView {
        OfferView {
            hostname: host.into(),
            attributes: [("zone".to_string(), zone.to_string())].into(),
            cpus,
            mem: 1024.0,
            disk: 0.0,
            ports: vec![(31000, 31009)],
        }
    }

    #[test]
    fn group_by_zone_spreads_and_unique_hostname_never_doubles() {
        let mut offers = vec![
            offer("h1", "a", 4.0),
            offer("h2", "a", 4.0),
            offer("h3", "b", 4.0),
            offer("h4", "c", 4.0),
        ];
        let launches = place(&app(r#"[["zone","GROUP_BY"]]"#, 0.1, 1), 3, &mut offers, &[]);
        let zones: Vec<&str> = launches.iter().map(|l| ["a", "a", "b", "c"][l.offer]).collect();
        let mut sorted = zones.clone();
        sorted.sort();
        assert_eq!(sorted, ["a", "b", "c"]);
        let mut offers = vec![offer("h1", "a", 4.0), offer("h2", "a", 4.0)];
        let launches = place(&app(r#"[["hostname","UNIQUE"]]"#, 0.1, 1), 5, &mut offers, &[]);
        assert_eq!(launches.len(), 2);
    }

    #[test]
    fn instances_spread_over_the_agents_of_a_zone_before_doubling_up() {
        let mut offers = vec![
            offer("h1", "a", 4.0),
            offer("h2", "a", 4.0),
            offer("h3", "b", 4.0),
            offer("h4", "b", 4.0),
            offer("h5", "c", 4.0),
        ];
        let launches = place(&app(r#"[["zone","GROUP_BY"]]"#, 0.1, 1), 5, &mut offers, &[]);
        let mut hosts: Vec<usize> = launches.iter().map(|l| l.offer).collect();
        hosts.sort();
        assert_eq!(hosts, [0, 1, 2, 3, 4], "one instance per agent");
        let placed = [Placed {
            hostname: "h1".into(),
            attributes: [("zone".to_string(), "a".to_string())].into(),
        }];
        let mut offers = vec![offer("h1", "a", 4.0), offer("h2", "a", 4.0)];
        let launches = place(&app("[]", 0.1, 1), 1, &mut offers, &placed);
        assert_eq!(launches[0].offer, 1, "the agent without an instance comes first");
    }

    #[test]
    fn like_cluster_and_max_per() {
        let mut offers = vec![offer("h1", "a", 4.0), offer("h2", "b", 4.0)];
        let l = place(&app(r#"[["zone","LIKE","b|c"]]"#, 0.1, 0), 3, &mut offers, &[]);
        assert!(l.iter().all(|l| l.offer == 1) && l.len() == 3);
        let mut offers = vec![offer("h1", "a", 4.0), offer("h2", "b", 4.0)];
        let l = place(&app(r#"[["zone","MAX_PER","2"]]"#, 0.1, 0), 9, &mut offers, &[]);
        assert_eq!(l.len(), 4);
        let mut offers = vec![offer("h1", "a", 4.0), offer("h2", "b", 4.0)];
        let l = place(&app(r#"[["zone","CLUSTER","a"]]"#, 0.1, 0), 2, &mut offers, &[]);
        assert!(l.iter().all(|l| l.offer == 0));
    }

    proptest! {
        #[test]
        fn launches_never_exceed_offers_and_ports_are_distinct(
            cpus in prop::collection::vec(0.0f64..4.0, 1..6),
            need in 0.05f64..1.5,
            wanted in 0u32..20,
            ports in 0usize..3,
        ) {
            let mut offers: Vec<OfferView> = cpus.iter().enumerate().map(|(i, c)| offer(&format!("h{i}"), "a", *c)).collect();
            let original = offers.clone();
            let launches = place(&app("[]", need, ports), wanted, &mut offers, &[]);
            prop_assert!(launches.len() as u32 <= wanted);
            for (i, o) in original.iter().enumerate() {
                let used: Vec<&Launch> = launches.iter().filter(|l| l.offer == i).collect();
                prop_assert!(used.len() as f64 * need <= o.cpus + 1e-6);
                let mut all: Vec<u64> = used.iter().flat_map(|l| l.ports.clone()).collect();
                prop_assert!(all.iter().all(|p| (31000..=31009).contains(p)));
                let n = all.len();
                all.sort();
                all.dedup();
                prop_assert_eq!(all.len(), n, "ports handed out twice");
            }
            // Placement stops only when nothing else fits.
            if (launches.len() as u32) < wanted {
                prop_assert!(place(&app("[]", need, ports), 1, &mut offers, &[]).is_empty());
            }
        }
    }
}

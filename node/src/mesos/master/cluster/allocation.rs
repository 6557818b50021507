//! The allocator: every agent's available resources offered to one framework at a time.

use std::collections::BTreeMap;
use std::time::Instant;

use super::{Cluster, OfferRecord};
use crate::mesos::v1::{self, Event, Id};

impl Cluster {
    /// Offers every agent's available resources to one eligible framework each (the one with
    /// the smallest share of cpus, so frameworks take turns), in one OFFERS event per framework.
    pub fn allocate(&mut self, now: Instant) {
        self.last_allocation = now;
        self.allocate_soon = false;
        self.counters.allocation_runs += 1;
        for framework in self.frameworks.values_mut() {
            for filters in framework.filters.values_mut() {
                filters.retain(|f| f.until > now);
            }
        }
        let mut share: BTreeMap<String, f64> = self
            .frameworks
            .values()
            .filter(|f| f.connected() && !f.suppressed)
            .map(|f| {
                let held = self.used_by(&f.id).plus(&self.offered_to(&f.id));
                (f.id.clone(), held.scalar("cpus"))
            })
            .collect();
        if share.is_empty() {
            return;
        }
        let mut batches: BTreeMap<String, Vec<v1::Offer>> = BTreeMap::new();
        let agent_ids: Vec<String> = self.agents.keys().cloned().collect();
        for agent_id in agent_ids {
            let available = self.available_on(&agent_id);
            if !available.is_allocatable() {
                continue;
            }
            let chosen = share
                .iter()
                .filter(|(id, _)| {
                    let filters = self.frameworks[*id].filters.get(&agent_id);
                    !filters.is_some_and(|fs| fs.iter().any(|f| f.resources.contains(&available)))
                })
                .min_by(|a, b| a.1.total_cmp(b.1).then_with(|| a.0.cmp(b.0)))
                .map(|(id, _)| id.clone());
            let Some(framework_id) = chosen else {
                continue;
            };
            *share.get_mut(&framework_id).expect("chosen from share") += available.scalar("cpus");
            let offer_id = self.next("O");
            let agent = &self.agents[&agent_id];
            let role = self.frameworks[&framework_id].info.allocation_role();
            let offer = v1::Offer {
                id: Id::new(&offer_id),
                framework_id: Id::new(&framework_id),
                agent_id: Id::new(&agent_id),
                hostname: agent.hostname.clone(),
                url: Some(v1::Url {
                    scheme: "http".to_owned(),
                    address: v1::Address {
                        hostname: Some(agent.hostname.clone()),
                        ip: Some(agent.address.ip.clone()),
                        port: u32::from(agent.address.port),
                    },
                    path: Some("/slave(1)".to_owned()),
                }),
                resources: available.to_v1(Some(&role)),
                attributes: agent.attributes.clone(),
                executor_ids: Vec::new(),
            };
            self.offers.insert(
                offer_id.clone(),
                OfferRecord {
                    id: offer_id,
                    framework_id: framework_id.clone(),
                    agent_id,
                    resources: available,
                },
            );
            batches.entry(framework_id).or_default().push(offer);
        }
        for (framework_id, offers) in batches {
            self.send(&framework_id, &Event::offers(offers));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Effect;
    use super::super::testing::*;
    use super::*;
    use crate::mesos::resources::Resources;
    use crate::mesos::v1::FrameworkInfo;

    #[test]
    fn offers_exclude_used_and_offered_resources() {
        let mut cluster = Cluster::new(config(), vec![]);
        let registered = cluster.register_agent(agent("cpus:1;mem:256;ports:[100-101]"));
        let (tx_a, mut rx_a) = stream();
        let (tx_b, mut rx_b) = stream();
        let (a, _) = cluster.subscribe(FrameworkInfo::default(), tx_a);
        let (b, _) = cluster.subscribe(FrameworkInfo::default(), tx_b);
        cluster.allocate(Instant::now());
        let offers_a: Vec<v1::Offer> = events(&mut rx_a)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect();
        assert_eq!(offers_a.len(), 1, "the whole agent goes to one framework");
        // Nothing is left for the second framework while the offer is outstanding.
        cluster.allocate(Instant::now());
        assert!(events(&mut rx_b).iter().all(|e| e.offers.is_none()));

        cluster.accept(&a, &launch(&offers_a[0], "t1", "cpus:0.5;mem:100;ports:[100-100]"));
        let effects = cluster.take_effects();
        assert!(effects.iter().any(|e| matches!(e, Effect::Launch { .. })));
        cluster.allocate(Instant::now());
        let offers_b: Vec<v1::Offer> = events(&mut rx_b)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect();
        assert_eq!(offers_b.len(), 1);
        let rest = Resources::from_v1(&offers_b[0].resources);
        assert_eq!(rest.scalar("cpus"), 0.5);
        assert_eq!(rest.scalar("mem"), 156.0);
        assert_eq!(rest.range_set("ports").to_string(), "[101-101]");
        assert_eq!(cluster.used_on(&registered.agent_id.value).scalar("cpus"), 0.5);
        let _ = b;
    }
}

//! Checking a [`ClusterSpec`] before anything is touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ipnet::{IpNet, Ipv4Net};

use super::{ClusterSpec, PortRange};
use crate::app::{AppId, AppIdError};

/// The most AZs the sim emulates (and the address plan carves subnets for).
pub const MAX_AZS: u32 = 8;

/// One problem with a spec, naming where it is and how to fix it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    /// Bad TOML, an unknown key or a value of the wrong type. `key` is the dotted key the
    /// problem is at (`nodes.slaves`), when the parser got as far as a key.
    #[error("{path}:{line}:{column}: {}{message}", key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    #[error("cannot read spec {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("`{key}` = {value}: {problem}; {fix}")]
    Invalid {
        key: String,
        value: String,
        problem: String,
        fix: String,
    },
}

/// Every problem found in one spec.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl std::fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.len();
        write!(f, "the spec has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

impl SpecError {
    pub(super) fn syntax(path: &Path, text: &str, key: Option<String>, err: &toml::de::Error) -> SpecError {
        let (line, column) = err.span().map(|span| line_column(text, span.start)).unwrap_or((1, 1));
        let mut message = err.message().trim().to_string();
        if message.starts_with("unknown field") {
            message.push_str("; remove it or fix its spelling (`paas init` writes a spec listing every key)");
        }
        SpecError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    }

    fn invalid(key: impl Into<String>, value: impl std::fmt::Display, problem: impl Into<String>, fix: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            key: key.into(),
            value: value.to_string(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// The spec key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            SpecError::Invalid { key, .. } => Some(key),
            SpecError::Syntax { key: Some(key), .. } => Some(key),
            _ => None,
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Known AZ counts of AWS regions, so that `--azs` beyond a region's zones is caught before any
/// API call. Regions missing here are checked against the API at plan time.
const REGION_AZS: &[(&str, u32)] = &[
    ("us-east-1", 6),
    ("us-east-2", 3),
    ("us-west-1", 2),
    ("us-west-2", 4),
    ("eu-west-1", 3),
    ("eu-west-2", 3),
    ("eu-west-3", 3),
    ("eu-central-1", 3),
    ("eu-north-1", 3),
    ("ap-northeast-1", 3),
    ("ap-southeast-1", 3),
    ("ap-southeast-2", 3),
    ("sa-east-1", 3),
];

/// Where [`ClusterSpec::validate`] finds relative app files, and which backend the spec is for.
#[derive(Debug, Clone, Copy)]
pub struct ValidationContext<'a> {
    /// The folder holding the spec file; app paths are relative to it.
    pub base_dir: &'a Path,
}

impl ClusterSpec {
    /// Checks every rule of the spec and returns all problems at once. Reads the app files;
    /// changes nothing.
    pub fn validate(&self, ctx: ValidationContext<'_>) -> Result<(), SpecErrors> {
        let mut errors = Vec::new();
        self.check_names(&mut errors);
        self.check_counts(&mut errors);
        self.check_network(&mut errors);
        self.check_agent(&mut errors);
        self.check_sim(&mut errors);
        self.check_aws(&mut errors);
        self.check_apps(ctx.base_dir, &mut errors);
        if errors.is_empty() { Ok(()) } else { Err(SpecErrors(errors)) }
    }

    fn check_names(&self, errors: &mut Vec<SpecError>) {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !name_ok {
            errors.push(SpecError::invalid(
                "name",
                format!("{:?}", self.name),
                "not a usable cluster name",
                "use 1-32 lowercase letters, digits and inner hyphens, e.g. \"paas\"",
            ));
        }
        let labels: Vec<&str> = self.domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !domain_ok {
            errors.push(SpecError::invalid(
                "domain",
                format!("{:?}", self.domain),
                "not a DNS domain",
                "use lowercase labels separated by dots, e.g. \"paas.example.com\" (or \"paas.localhost\" in the sim)",
            ));
        }
    }

    fn check_counts(&self, errors: &mut Vec<SpecError>) {
        let m = self.nodes.masters;
        if m == 0 || m.is_multiple_of(2) {
            let fix = if m == 0 {
                "use 3 (or 1 for a throwaway cluster)".to_string()
            } else {
                format!("use {} or {}", m - 1, m + 1)
            };
            errors.push(SpecError::invalid(
                "nodes.masters",
                m,
                if m == 0 {
                    "a cluster needs masters: ZooKeeper, Mesos and Marathon run there"
                } else {
                    "an even number of masters tolerates no more failures than one fewer, and a split can leave no quorum"
                },
                fix,
            ));
        }
        if m > 9 {
            errors.push(SpecError::invalid(
                "nodes.masters",
                m,
                "more than 9 masters slows every ZooKeeper write",
                "use 3, 5 or 7",
            ));
        }
        if self.nodes.slaves == 0 {
            errors.push(SpecError::invalid(
                "nodes.slaves",
                0,
                "with no slaves no app can run",
                "use at least 1 (the default is 5)",
            ));
        }
        if self.nodes.lbs == 0 {
            errors.push(SpecError::invalid(
                "nodes.lbs",
                0,
                "with no lbs no app is reachable",
                "use at least 1; 2 or more survive the loss of one",
            ));
        }
        if self.nodes.lbs > 10 * self.azs.max(1) {
            errors.push(SpecError::invalid(
                "nodes.lbs",
                self.nodes.lbs,
                "the address plan holds 10 lbs per AZ",
                "use fewer lbs or more azs",
            ));
        }
        if self.nodes.adminlb > 1 {
            errors.push(SpecError::invalid(
                "nodes.adminlb",
                self.nodes.adminlb,
                "there is one admin entry point",
                "use 0 or 1",
            ));
        }
        if self.azs == 0 {
            errors.push(SpecError::invalid(
                "azs",
                0,
                "nodes need at least one availability zone",
                "use 1 to 3",
            ));
        }
        if self.azs > MAX_AZS {
            errors.push(SpecError::invalid(
                "azs",
                self.azs,
                format!("the address plan and the sim hold at most {MAX_AZS} AZs"),
                format!("use at most {MAX_AZS}"),
            ));
        }
    }

    fn check_network(&self, errors: &mut Vec<SpecError>) {
        match self.vpc_cidr.parse::<Ipv4Net>() {
            Err(_) => errors.push(SpecError::invalid(
                "vpc_cidr",
                format!("{:?}", self.vpc_cidr),
                "not an IPv4 CIDR",
                "write it as ADDRESS/PREFIX, e.g. \"10.20.0.0/16\"",
            )),
            Ok(net) => {
                if net != net.trunc() {
                    errors.push(SpecError::invalid(
                        "vpc_cidr",
                        &self.vpc_cidr,
                        "host bits are set",
                        format!("use \"{}\"", net.trunc()),
                    ));
                }
                if !net.addr().is_private() {
                    errors.push(SpecError::invalid(
                        "vpc_cidr",
                        &self.vpc_cidr,
                        "not a private range",
                        "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
                    ));
                }
                if net.prefix_len() < 16 || net.prefix_len() > 24 {
                    errors.push(SpecError::invalid(
                        "vpc_cidr",
                        &self.vpc_cidr,
                        "the prefix must be between /16 (the largest AWS VPC) and /24 (room for subnets per AZ)",
                        "use a /16, e.g. \"10.20.0.0/16\"",
                    ));
                } else if let Some(capacity) = crate::topology::slaves_per_az_capacity(net) {
                    let per_az = self.nodes.slaves.div_ceil(self.azs.max(1));
                    if per_az > capacity {
                        errors.push(SpecError::invalid(
                            "nodes.slaves",
                            self.nodes.slaves,
                            format!(
                                "{} per AZ do not fit the subnets of {} (room for {capacity} per AZ)",
                                per_az, self.vpc_cidr
                            ),
                            "use a larger vpc_cidr (a /16 holds about 4000 slaves per AZ) or more azs",
                        ));
                    }
                }
            }
        }

        let mut parsed: Vec<(String, IpNet)> = Vec::new();
        if self.admin_cidrs.is_empty() {
            errors.push(SpecError::invalid(
                "admin_cidrs",
                "[]",
                "nobody could reach the admin entry",
                "list your own address, e.g. [\"203.0.113.7/32\"]",
            ));
        }
        for (i, cidr) in self.admin_cidrs.iter().enumerate() {
            let key = format!("admin_cidrs[{i}]");
            match cidr.parse::<IpNet>() {
                Err(_) => errors.push(SpecError::invalid(
                    &key,
                    format!("{cidr:?}"),
                    "not a CIDR",
                    "write it as ADDRESS/PREFIX, e.g. \"203.0.113.7/32\"",
                )),
                Ok(net) => {
                    if net.prefix_len() == 0 && !self.allow_public_admin {
                        errors.push(SpecError::invalid(
                            &key,
                            format!("{cidr:?}"),
                            "opens Marathon to the whole internet: anyone could run jobs on the cluster",
                            "list only your own addresses, or set allow_public_admin = true if you really mean it",
                        ));
                    }
                    if let Some((other, _)) = parsed.iter().find(|(_, o)| o.contains(&net) || net.contains(o)) {
                        errors.push(SpecError::invalid(
                            &key,
                            format!("{cidr:?}"),
                            format!("overlaps {other:?}"),
                            "remove one of the two",
                        ));
                    }
                    parsed.push((cidr.clone(), net));
                }
            }
        }
    }

    fn check_agent(&self, errors: &mut Vec<SpecError>) {
        if !(1..=3600).contains(&self.mesos.agent_ping_timeout_secs) {
            errors.push(SpecError::invalid(
                "mesos.agent_ping_timeout_secs",
                self.mesos.agent_ping_timeout_secs,
                "must be between 1 and 3600 seconds",
                "use Mesos' default, 15",
            ));
        }
        if !(1..=100).contains(&self.mesos.max_agent_ping_timeouts) {
            errors.push(SpecError::invalid(
                "mesos.max_agent_ping_timeouts",
                self.mesos.max_agent_ping_timeouts,
                "must be between 1 and 100",
                "use Mesos' default, 5",
            ));
        }
        if !(self.agent.cpus > 0.0 && self.agent.cpus.is_finite()) {
            errors.push(SpecError::invalid(
                "agent.cpus",
                self.agent.cpus,
                "an agent must offer some CPU",
                "use e.g. 2.0",
            ));
        }
        if self.agent.mem < 32 {
            errors.push(SpecError::invalid(
                "agent.mem",
                self.agent.mem,
                "too little memory to run a task (MiB)",
                "use e.g. 2048",
            ));
        }
        match self.agent.ports.parse::<PortRange>() {
            Err(why) => errors.push(SpecError::invalid(
                "agent.ports",
                format!("{:?}", self.agent.ports),
                why,
                "write it as \"31000-32000\"",
            )),
            Ok(range) if range.begin < 1024 => errors.push(SpecError::invalid(
                "agent.ports",
                format!("{:?}", self.agent.ports),
                "overlaps privileged ports used by the cluster's own services",
                "use a range above 1024, e.g. \"31000-32000\"",
            )),
            Ok(_) => {}
        }
    }

    fn check_sim(&self, errors: &mut Vec<SpecError>) {
        let ports = [
            ("sim.http_port", self.sim.http_port),
            ("sim.admin_port", self.sim.admin_port),
            ("sim.marathon_port", self.sim.marathon_port),
            ("sim.mesos_port", self.sim.mesos_port),
        ];
        for (i, &(key, port)) in ports.iter().enumerate() {
            if port == 0 {
                errors.push(SpecError::invalid(key, 0, "a port is needed on 127.0.0.1", "use e.g. 8080"));
            } else if let Some((other, _)) = ports[..i].iter().find(|(_, p)| *p == port) {
                errors.push(SpecError::invalid(
                    key,
                    port,
                    format!("the same as {other}"),
                    "give each of sim.http_port, admin_port, marathon_port and mesos_port its own port, e.g. 8080, 8081, 8082 and 5050",
                ));
            }
        }
        let m = &self.sim.memory;
        for (key, mib) in [
            ("sim.memory.master", m.master),
            ("sim.memory.slave", m.slave),
            ("sim.memory.lb", m.lb),
            ("sim.memory.adminlb", m.adminlb),
            ("sim.memory.elb", m.elb),
        ] {
            if mib < 16 {
                errors.push(SpecError::invalid(
                    key,
                    mib,
                    "too little memory for the container (MiB)",
                    "use at least 16; the defaults fit the default cluster",
                ));
            }
        }
    }

    fn check_aws(&self, errors: &mut Vec<SpecError>) {
        if let Some(region) = &self.aws.region
            && let Some((_, zones)) = REGION_AZS.iter().find(|(r, _)| r == region)
            && self.azs > *zones
        {
            errors.push(SpecError::invalid(
                "azs",
                self.azs,
                format!("region {region} has {zones} availability zones"),
                format!("use at most {zones}, or another region"),
            ));
        }
        if let Some(ami) = &self.aws.ami
            && !ami.starts_with("ami-")
        {
            errors.push(SpecError::invalid(
                "aws.ami",
                format!("{ami:?}"),
                "not an AMI id",
                "write it as \"ami-0123456789abcdef0\", or leave it out to look one up by aws.ami_name",
            ));
        }
    }

    fn check_apps(&self, base_dir: &Path, errors: &mut Vec<SpecError>) {
        let Some(apps) = &self.apps else { return };
        let mut seen: BTreeMap<AppId, String> = BTreeMap::new();
        for (i, path) in apps.iter().enumerate() {
            let key = format!("apps[{i}]");
            let full = base_dir.join(path);
            let shown = path.display().to_string();
            let text = match std::fs::read_to_string(&full) {
                Ok(text) => text,
                Err(e) => {
                    errors.push(SpecError::invalid(
                        &key,
                        format!("{shown:?}"),
                        format!("cannot read {}: {e}", full.display()),
                        "give the path of a Marathon app JSON file, relative to the spec",
                    ));
                    continue;
                }
            };
            match crate::app::AppFile::parse(&text) {
                Err(why) => errors.push(SpecError::invalid(
                    &key,
                    format!("{shown:?}"),
                    format!("not a Marathon app definition: {why}"),
                    "fix the JSON; see the Marathon docs for POST /v2/apps",
                )),
                Ok(app) => match AppId::parse(&app.id) {
                    Err(AppIdError(why)) => errors.push(SpecError::invalid(
                        format!("{key}.id"),
                        format!("{:?}", app.id),
                        why,
                        "use path segments of lowercase letters, digits and inner hyphens, e.g. \"/www\" or \"/shop/cart\"",
                    )),
                    Ok(id) => {
                        if let Some(first) = seen.get(&id) {
                            errors.push(SpecError::invalid(
                                format!("{key}.id"),
                                format!("{:?}", app.id),
                                format!("also the id of {first}"),
                                "give every app its own id",
                            ));
                        } else {
                            seen.insert(id, shown);
                        }
                    }
                },
            }
        }
    }
}

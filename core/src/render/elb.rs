//! The external load balancer in front of the lbs: a classic ELB on AWS, HAProxy in the sim,
//! both from one [`LoadBalancerSpec`].

use std::fmt::Write;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::ports;

/// What the external load balancer does, whichever product implements it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadBalancerSpec {
    pub name: String,
    /// Port clients connect to.
    pub listen_port: u16,
    /// Port on each member.
    pub target_port: u16,
    pub health_check: HealthCheck,
    /// Spread requests over members in every AZ, not just the client's.
    pub cross_zone: bool,
}

/// An HTTP health check of each member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub path: String,
    pub interval_secs: u32,
    pub timeout_secs: u32,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

impl HealthCheck {
    /// The classic ELB's target notation, `HTTP:80/status`.
    pub fn elb_target(&self, port: u16) -> String {
        format!("HTTP:{port}{}", self.path)
    }
}

impl LoadBalancerSpec {
    /// The cluster's external load balancer. `interval_secs` is 5 on AWS (the ELB's minimum) and
    /// 1 in the sim, where detecting a dead lb fast is the point of rehearsing.
    pub fn external(cluster: &str, interval_secs: u32) -> LoadBalancerSpec {
        LoadBalancerSpec {
            name: format!("{cluster}-elb"),
            listen_port: ports::HTTP,
            target_port: ports::HTTP,
            health_check: HealthCheck {
                path: "/status".into(),
                interval_secs,
                timeout_secs: interval_secs.clamp(1, 2),
                healthy_threshold: 2,
                unhealthy_threshold: 2,
            },
            cross_zone: true,
        }
    }
}

/// HAProxy configuration for the sim's ELB, over the lbs' addresses.
///
/// Tuned with the lbs' nginx, which passes frozen or lost tasks over by itself (within its
/// 3 s read timeout, 10 s per request at most), so that a lossy or frozen lb costs a retry on
/// the other lb rather than a failed request:
/// - `timeout connect 2s`, longer than the 1 s after which a lost SYN is sent again, and
///   `option redispatch 1`: every retry goes to another lb;
/// - `retry-on conn-failure empty-response 502 503`: a connection refused or lost before an
///   answer (an lb killed mid-request comes back as an empty response or a 502) is retried on
///   the other lb, never a timed-out one (nginx already retried what is safe); and only GET and
///   HEAD are retried after they were sent (`disable-l7-retry` for every other method, which
///   keeps only the connection-failure retry, when nothing was sent);
/// - `timeout server 15s`: longer than an lb's own retry budget, so no lb retry is cut off;
/// - checks: HAProxy checks every `interval_secs` (1 s in the sim, where the ELB checks every
///   5 s) and takes an lb out after the ELB's threshold of failed checks, each given 2 s: a
///   dead lb is out in seconds (waiting for twice as many cost `kill-lbs 1` its target);
/// - every lb again as a backup that is never checked (`option allbackups`): when the checks
///   of both lbs fail at once (20% loss on both made two checks in a row fail now and then)
///   requests still go to them instead of a 503 for everyone, as the lbs' nginx keeps its
///   tasks as backups;
/// - `http-reuse always`: requests travel on connections to the lbs kept open, as a classic
///   ELB keeps its own, even a client's first: a new connection per request put a handshake
///   on each request's path, and a lost SYN costs a second where a lost segment of an open
///   connection costs a fifth of one (20% loss on both lbs: 4 to 11 of about 3,100 requests
///   past the probe's 5 s with new connections, 0 or 1 with kept ones). A request sent on a kept
///   connection to an lb cut off or frozen waits as one sent on a new connection to a frozen
///   lb does (its kernel still answers the handshake) until the lb's checks take it out.
pub fn haproxy_cfg(lb: &LoadBalancerSpec, members: &[(String, Ipv4Addr)]) -> String {
    let hc = &lb.health_check;
    let mut cfg = format!(
        "# {name}: the sim's stand-in for a classic ELB\n\
         global\n    maxconn 8192\n\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 15s\n\
         \x20   timeout check {check}s\n    option redispatch 1\n    retries 3\n    retry-on conn-failure empty-response 502 503\n\n\
         frontend http\n    bind *:{listen}\n    default_backend lbs\n\n\
         backend lbs\n    balance roundrobin\n    http-reuse always\n    option allbackups\n    http-request disable-l7-retry if !METH_GET !METH_HEAD\n    option httpchk GET {path}\n    http-check expect status 200\n\
         \x20   default-server inter {interval}s fall {fall} rise {rise}\n",
        name = lb.name,
        listen = lb.listen_port,
        path = hc.path,
        check = hc.timeout_secs.max(2),
        interval = hc.interval_secs,
        fall = hc.unhealthy_threshold,
        rise = hc.healthy_threshold,
    );
    for (name, address) in members {
        writeln!(cfg, "    server {name} {address}:{} check", lb.target_port).unwrap();
    }
    for (name, address) in members {
        writeln!(cfg, "    server {name}-backup {address}:{} backup", lb.target_port).unwrap();
    }
    cfg
}

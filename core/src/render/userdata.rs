//! Cloud-init user-data for an AWS instance: the node runs what a sim node runs.
//!
//! Upstream Mesos and Marathon packages are gone (their vendor's hosting was switched off in
//! 2023 and no Debian 12 build of Mesos exists), so an instance runs `paas-node supervise` with
//! the same `/etc/paas/node.json` as a sim container ([`NodeConfig`], serialized as the Docker
//! backend puts it in the container): the supervisor writes the node's files and runs
//! ZooKeeper and nginx from Debian's packages beside `paas-node`'s Mesos master and agent,
//! Marathon and lb-sync.
//!
//! At boot (`runcmd` runs `/usr/local/sbin/paas-boot`, written by `write_files`):
//! 1. `apt-get install` the Debian packages the node's programs need (ZooKeeper and a JRE on
//!    masters, nginx on lbs, curl and ca-certificates everywhere), with packaged services kept
//!    from starting; `apt-get update` only when the install cannot proceed without it;
//! 2. fetch `paas-node` from the cluster's private artifact bucket with the instance role's
//!    credentials, asked from the instance metadata service with an IMDSv2 token, the request
//!    SigV4-signed by curl (`--aws-sigv4`; the secret goes through `curl -K -`, never argv).
//!    S3 wants `x-amz-content-sha256` on every SigV4 request and Debian 12's curl (7.88) does
//!    not add it, so the user-data does (`UNSIGNED-PAYLOAD`; curl then signs it);
//! 3. check its sha256 (`sha256sum -c`) and install it as `/usr/local/bin/paas-node`;
//! 4. enable and start `paas-node.service`, which runs `paas-node supervise` (a subreaper, so
//!    its programs' orphans are reaped under systemd as they are when it is PID 1 in the sim).
//!
//! Any failure stops the boot before anything starts, visibly: a `paas-boot: BOOT FAILED:
//! <reason>` line on the console (cloud-init's output) and in the journal (`-t paas-boot`),
//! and the reason in [`BOOT_FAILED`], which also keeps the unit from starting later.
//!
//! The only hosts the user-data names are S3 (or the emulator in [`NodeArtifact::endpoint`])
//! and the instance metadata service; apt uses the AMI's Debian mirrors; everything else in it
//! is a cluster address.

use std::fmt::Write;

use super::NodeConfig;

/// Where a node fetches `paas-node` at boot: an object of the cluster's private artifact bucket,
/// keyed by the binary's sha256, read with the instance role's credentials (IMDSv2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeArtifact {
    pub bucket: String,
    /// The object's key (derived from `sha256`).
    pub key: String,
    /// Lowercase hex sha256 of the binary; the node refuses to start anything on a mismatch.
    pub sha256: String,
    pub region: String,
    /// The S3 endpoint when it is not AWS's own `https://s3.<region>.amazonaws.com` (an
    /// emulator, e.g. `http://10.20.0.1:5000`); the object is then read path-style.
    pub endpoint: Option<String>,
}

impl NodeArtifact {
    /// The object's URL: virtual-hosted style on AWS
    /// (`https://<bucket>.s3.<region>.amazonaws.com/<key>`), path style under `endpoint`.
    pub fn url(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => format!("{}/{}/{}", endpoint.trim_end_matches('/'), self.bucket, self.key),
            None => format!("https://{}.s3.{}.amazonaws.com/{}", self.bucket, self.region, self.key),
        }
    }
}

/// EC2 refuses user-data larger than this.
pub const MAX_BYTES: usize = 16 * 1024;

/// Where the node's configuration goes: the path `paas-node supervise` reads by default, and
/// the one the sim's containers get.
pub const NODE_CONFIG: &str = "/etc/paas/node.json";
/// Written (with the reason) when the boot fails; while it exists the node starts nothing.
pub const BOOT_FAILED: &str = "/var/lib/paas/boot-failed";
/// The boot script cloud-init runs.
pub const BOOT_SCRIPT: &str = "/usr/local/sbin/paas-boot";
/// The systemd unit that runs the node's programs.
pub const UNIT: &str = "paas-node.service";
/// Where the instance metadata service answers, on every EC2 instance.
pub const METADATA: &str = "http://169.254.169.254/latest";

/// The Debian packages the node's programs need, besides `curl` and `ca-certificates`.
fn packages(config: &NodeConfig) -> Vec<&'static str> {
    let mut packages = vec!["curl", "ca-certificates"];
    for program in &config.programs {
        let needs: &[&'static str] = match program.name.as_str() {
            "zookeeper" => &["zookeeper", "default-jre-headless"],
            "nginx" => &["nginx"],
            // The agent's docker containerizer runs Docker tasks on the node's own engine.
            "mesos-agent" => &["docker.io"],
            _ => &[],
        };
        for package in needs {
            if !packages.contains(package) {
                packages.push(package);
            }
        }
    }
    packages
}

/// The boot script's start: reporting a failure, then the Debian packages.
const BOOT_HEAD: &str = r#"#!/bin/sh
# paas node boot: Debian packages, then paas-node from the cluster's artifact bucket
# (instance role via IMDSv2, SigV4), checked by sha256, then paas-node supervise.
set -u
fail() {
  mkdir -p /var/lib/paas
  printf '%s\n' "$*" > @BOOT_FAILED@
  logger -t paas-boot "BOOT FAILED: $*" 2>/dev/null || true
  echo "paas-boot: BOOT FAILED: $*" >&2
  exit 1
}
rm -f @BOOT_FAILED@
export DEBIAN_FRONTEND=noninteractive
# Packaged services must not start: the node's programs run under paas-node supervise.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d
packages() { apt-get install -y -q --no-install-recommends @PACKAGES@; }
packages || { apt-get update -q && packages; }
installed=$?
rm -f /usr/sbin/policy-rc.d
[ "$installed" -eq 0 ] || fail "apt-get install @PACKAGES@ failed"
systemctl disable --now nginx zookeeper >/dev/null 2>&1 || true
@ENGINE@"#;

/// Fetching and checking `paas-node`.
const BOOT_FETCH: &str = r#"get() { curl -fsS --retry 10 --retry-connrefused --retry-delay 1 "$@"; }
token=$(get -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 600' @METADATA@/api/token) \
  || fail "no IMDSv2 token from @METADATA@/api/token"
meta() { get -H "X-aws-ec2-metadata-token: $token" "@METADATA@/meta-data/$1"; }
role=$(meta iam/security-credentials/ | head -n 1)
[ -n "$role" ] || fail "the instance has no role: no instance profile, or IMDS does not answer"
creds=$(meta "iam/security-credentials/$role") || fail "no credentials for role $role"
cred() { printf '%s' "$creds" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
key=$(cred AccessKeyId) && secret=$(cred SecretAccessKey) && session=$(cred Token) \
  || fail "the credentials of role $role lack AccessKeyId, SecretAccessKey or Token"
mkdir -p /var/lib/paas
download=/var/lib/paas/paas-node.download
printf 'user = "%s:%s"\nheader = "x-amz-security-token: %s"\nheader = "x-amz-content-sha256: UNSIGNED-PAYLOAD"\n' \
  "$key" "$secret" "$session" \
  | get -K - --aws-sigv4 'aws:amz:@REGION@:s3' -o "$download" '@URL@' \
  || fail "cannot fetch paas-node from @URL@"
echo "@SHA256@  $download" | sha256sum -c --status \
  || fail "sha256 mismatch: paas-node from @URL@ is $(sha256sum < "$download" | cut -d' ' -f1), expected @SHA256@"
install -m 0755 "$download" /usr/local/bin/paas-node && rm -f "$download"
"#;

/// Starting the node.
const BOOT_START: &str = r#"systemctl daemon-reload
systemctl enable --now @UNIT@ || fail "systemctl could not start @UNIT@"
"#;

/// The unit that runs the node's programs under the same supervisor as the sim.
const UNIT_TEXT: &str = r#"[Unit]
Description=paas node: its programs under paas-node supervise
Wants=network-online.target
After=network-online.target
# A node whose boot failed starts nothing (the file says why).
ConditionPathExists=!@BOOT_FAILED@

[Service]
ExecStart=/usr/local/bin/paas-node supervise --config @NODE_CONFIG@
# supervise passes SIGTERM on to its programs and waits for them; the rest get SIGKILL later.
KillMode=mixed
TimeoutStopSec=30
Restart=always
RestartSec=3
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"#;

/// Indents every line of `text` for a YAML block scalar.
fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// A `write_files` entry with `text` as a literal block.
fn write_file(out: &mut String, path: &str, permissions: &str, text: &str) {
    let _ = write!(out, "  - path: {path}\n    permissions: '{permissions}'\n    content: |\n");
    out.push_str(&indent(text, 6));
}

/// The boot script, for `artifact` (without one it fails at once, saying so).
fn boot_script(config: &NodeConfig, artifact: Option<&NodeArtifact>) -> String {
    let fetch = match artifact {
        Some(artifact) => BOOT_FETCH
            .replace("@METADATA@", METADATA)
            .replace("@REGION@", &artifact.region)
            .replace("@URL@", &artifact.url())
            .replace("@SHA256@", &artifact.sha256),
        None => "fail \"this user-data was rendered without a paas-node artifact\"\n".to_owned(),
    };
    // Docker Engine, held back by policy-rc.d while installing, runs before the agent (unless
    // an engine already answers on the node's socket).
    let engine = if packages(config).contains(&"docker.io") {
        "docker info >/dev/null 2>&1 || systemctl enable --now docker.service \\\n  || fail \"systemctl could not start docker.service (the agent's Docker engine)\"\n"
    } else {
        ""
    };
    [BOOT_HEAD, &fetch, BOOT_START]
        .concat()
        .replace("@BOOT_FAILED@", BOOT_FAILED)
        .replace("@ENGINE@", engine)
        .replace("@PACKAGES@", &packages(config).join(" "))
        .replace("@UNIT@", UNIT)
}

/// Renders the `#cloud-config` user-data of a node: its [`NodeConfig`] as `/etc/paas/node.json`,
/// the boot script and the unit.
///
/// `artifact` is where the node gets `paas-node`; the AWS backend always passes one (it is an
/// `Option` only for callers that render user-data to look at). Without it the node's boot
/// fails visibly, naming the reason.
///
/// Fails (returns the size) when the user-data would not fit EC2's 16 KiB limit.
pub fn cloud_config(config: &NodeConfig, artifact: Option<&NodeArtifact>) -> Result<String, usize> {
    let json = serde_json::to_string(config).expect("node configuration serializes");
    let mut out = String::from("#cloud-config\nwrite_files:\n");
    write_file(&mut out, NODE_CONFIG, "0644", &json);
    write_file(&mut out, BOOT_SCRIPT, "0755", &boot_script(config, artifact));
    let unit = UNIT_TEXT
        .replace("@BOOT_FAILED@", BOOT_FAILED)
        .replace("@NODE_CONFIG@", NODE_CONFIG);
    write_file(&mut out, &format!("/etc/systemd/system/{UNIT}"), "0644", &unit);
    let _ = writeln!(out, "runcmd:\n  - [{BOOT_SCRIPT}]");
    if out.len() > MAX_BYTES { Err(out.len()) } else { Ok(out) }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::render::node_config;
    use crate::spec::ClusterSpec;
    use crate::topology::{Role, Topology};

    fn artifact() -> NodeArtifact {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".to_owned();
        NodeArtifact {
            bucket: "paas-demo-artifacts-0123456789ab".into(),
            key: format!("paas-node/{sha256}"),
            sha256,
            region: "eu-west-1".into(),
            endpoint: None,
        }
    }

    fn cluster() -> (ClusterSpec, Topology) {
        let spec = ClusterSpec::default();
        let topology = Topology::place(&spec, &["eu-west-1a".into(), "eu-west-1b".into(), "eu-west-1c".into()]).unwrap();
        (spec, topology)
    }

    fn rendered(role: Role) -> String {
        let (spec, topology) = cluster();
        let node = topology.nodes_of(role).next().unwrap();
        let config = node_config(&spec, &topology, node, &spec.admin_cidrs);
        cloud_config(&config, Some(&artifact())).unwrap()
    }

    /// The `/etc/paas/node.json` a user-data writes.
    fn node_json(user_data: &str) -> NodeConfig {
        let start = user_data.find(&format!("path: {NODE_CONFIG}")).unwrap();
        let line = user_data[start..].lines().nth(3).unwrap();
        serde_json::from_str(line.trim()).unwrap()
    }

    #[test]
    fn every_role_writes_its_node_config_and_installs_what_its_programs_need() {
        let (spec, topology) = cluster();
        for (role, packages) in [
            (Role::Master, &["zookeeper", "default-jre-headless"][..]),
            (Role::Slave, &["docker.io"][..]),
            (Role::Lb, &["nginx"][..]),
            (Role::AdminLb, &["nginx"][..]),
        ] {
            let node = topology.nodes_of(role).next().unwrap();
            let config = node_config(&spec, &topology, node, &spec.admin_cidrs);
            let text = cloud_config(&config, Some(&artifact())).unwrap();
            assert!(text.len() < MAX_BYTES, "{role:?}: {} bytes", text.len());
            assert_eq!(node_json(&text), config, "{role:?}: node.json is the node's configuration");
            let install = text.lines().find(|l| l.contains("packages() {")).unwrap();
            for package in ["curl", "ca-certificates"].iter().chain(packages) {
                assert!(
                    install.split_whitespace().any(|w| w.trim_end_matches(';') == *package),
                    "{role:?} installs {package}: {install}"
                );
            }
            assert_eq!(
                install.contains("java") || install.contains("jre"),
                role == Role::Master,
                "{role:?}: only masters need Java: {install}"
            );
            assert_eq!(
                text.contains("systemctl enable --now docker.service"),
                role == Role::Slave,
                "{role:?}: only slaves run a Docker engine"
            );
            assert!(text.contains("ExecStart=/usr/local/bin/paas-node supervise --config /etc/paas/node.json"));
        }
    }

    #[test]
    fn paas_node_is_checked_before_it_is_installed_and_the_unit_started() {
        let text = rendered(Role::Slave);
        let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{text}"));
        let artifact = artifact();
        assert!(at("/api/token") < at("iam/security-credentials/"), "IMDSv2: the token first");
        assert!(at(&artifact.url()) < at("sha256sum -c"));
        assert!(at(&format!("echo \"{}  $download\"", artifact.sha256)) < at("install -m 0755"));
        assert!(at("install -m 0755") < at("systemctl enable --now paas-node.service"));
        assert!(text.contains(&format!("ConditionPathExists=!{BOOT_FAILED}")));
        assert!(
            !text.contains("secret\" --") && text.contains("get -K -"),
            "the secret never goes in argv"
        );
        assert!(text.contains("x-amz-content-sha256"), "S3 refuses SigV4 requests without it");
    }

    #[test]
    fn without_an_artifact_the_boot_fails_saying_why() {
        let (spec, topology) = cluster();
        let node = topology.nodes_of(Role::Lb).next().unwrap();
        let text = cloud_config(&node_config(&spec, &topology, node, &spec.admin_cidrs), None).unwrap();
        assert!(text.contains("fail \"this user-data was rendered without a paas-node artifact\""));
        assert!(!text.contains("curl -fsS"));
    }

    #[test]
    fn an_emulator_endpoint_is_read_path_style() {
        let artifact = NodeArtifact {
            endpoint: Some("http://10.20.0.1:5000/".into()),
            ..artifact()
        };
        assert_eq!(
            artifact.url(),
            format!("http://10.20.0.1:5000/{}/{}", artifact.bucket, artifact.key)
        );
    }

    /// Every `scheme://host` in `text` (each host of `zk://h1:p,h2:p/path` alike).
    fn hosts(text: &str) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for (i, _) in text.match_indices("://") {
            let scheme_start = text[..i].rfind(|c: char| !c.is_ascii_alphanumeric()).map_or(0, |j| j + 1);
            let scheme = text[scheme_start..i].to_owned();
            let rest = &text[i + 3..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || ".-:,_".contains(c)))
                .unwrap_or(rest.len());
            // `http://a:8080,http://b:8080`: the item before the next `://` is its scheme.
            for item in rest[..end].split(',').filter(|item| !item.ends_with(':')) {
                let host = item.split(':').next().unwrap_or_default();
                found.insert((scheme.clone(), host.to_owned()));
            }
        }
        found
    }

    #[test]
    fn user_data_names_no_host_outside_the_cluster_but_s3_and_instance_metadata() {
        let (spec, topology) = cluster();
        let artifact = artifact();
        let s3 = format!("{}.s3.{}.amazonaws.com", artifact.bucket, artifact.region);
        let cluster: BTreeSet<String> = topology.nodes.iter().map(|n| n.address.to_string()).collect();
        let mut seen = BTreeSet::new();
        for node in &topology.nodes {
            let text = cloud_config(&node_config(&spec, &topology, node, &spec.admin_cidrs), Some(&artifact)).unwrap();
            // nginx's `proxy_pass http://<upstream>` names an upstream block of the same file.
            let upstreams: BTreeSet<String> = text
                .split("upstream ")
                .skip(1)
                .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
                .collect();
            for (scheme, host) in hosts(&text) {
                let allowed = cluster.contains(&host) || host == s3 || host == "169.254.169.254" || upstreams.contains(&host);
                assert!(allowed, "{}: user-data names {scheme}://{host}", node.name);
                seen.insert(host);
            }
        }
        assert!(seen.contains(&s3) && seen.contains("169.254.169.254"), "{seen:?}");
        assert!(
            topology.nodes_of(Role::Master).all(|m| seen.contains(&m.address.to_string())),
            "the masters' addresses (Marathon, ZooKeeper) are seen: {seen:?}"
        );
    }

    #[test]
    fn master_user_data_snapshot() {
        insta::assert_snapshot!(rendered(Role::Master));
    }

    #[test]
    fn lb_user_data_snapshot() {
        insta::assert_snapshot!(rendered(Role::Lb));
    }
}

//! ZooKeeper helpers shared by the node programs: `zk://` URLs, sessions, and the
//! "lowest ephemeral sequential znode leads" election that Mesos and Marathon use.

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, OneshotWatcher};

/// A parsed `zk://host1:port1,host2:port2/path` URL, as Mesos' `--zk` and `--master` flags take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port` of every server, in the order given.
    pub servers: Vec<String>,
    /// The znode path under which the program keeps its data, e.g. `/mesos`; never ends in `/`.
    pub path: String,
}

/// Why a `zk://` URL could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZkUrlError {
    #[error("ZooKeeper URL {0:?} does not start with zk://")]
    Scheme(String),
    #[error("ZooKeeper URL {0:?} names no server")]
    NoServer(String),
    #[error("ZooKeeper URL {url:?}: server {server:?} is not host:port")]
    Server { url: String, server: String },
    #[error("ZooKeeper URL {0:?} has no path (e.g. zk://127.0.0.1:2181/mesos)")]
    NoPath(String),
}

impl ZkUrl {
    /// Parses `zk://h1:p,h2:p/path`. Fails when the scheme, a `host:port` or the path is missing.
    pub fn parse(url: &str) -> Result<Self, ZkUrlError> {
        let rest = url.strip_prefix("zk://").ok_or_else(|| ZkUrlError::Scheme(url.to_owned()))?;
        // Credentials (`zk://user:pass@hosts/path`) are accepted by Mesos; the sim uses none.
        let rest = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
        let (hosts, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => return Err(ZkUrlError::NoPath(url.to_owned())),
        };
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return Err(ZkUrlError::NoPath(url.to_owned()));
        }
        let mut servers = Vec::new();
        for server in hosts.split(',').filter(|s| !s.is_empty()) {
            let valid = server
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !valid {
                return Err(ZkUrlError::Server {
                    url: url.to_owned(),
                    server: server.to_owned(),
                });
            }
            servers.push(server.to_owned());
        }
        if servers.is_empty() {
            return Err(ZkUrlError::NoServer(url.to_owned()));
        }
        Ok(Self {
            servers,
            path: path.to_owned(),
        })
    }

    /// The connect string the ZooKeeper client takes: `h1:p,h2:p` (no chroot).
    pub fn connect_string(&self) -> String {
        self.servers.join(",")
    }
}

impl std::fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "zk://{}{}", self.connect_string(), self.path)
    }
}

impl std::str::FromStr for ZkUrl {
    type Err = ZkUrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A ZooKeeper operation that failed, with the operation and path it was about.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("connecting to ZooKeeper at {servers}")]
    Connect {
        servers: String,
        #[source]
        source: zookeeper_client::Error,
    },
    #[error("ZooKeeper {operation} of {path}")]
    Operation {
        operation: &'static str,
        path: String,
        #[source]
        source: zookeeper_client::Error,
    },
}

impl ZkError {
    fn op(operation: &'static str, path: &str) -> impl FnOnce(zookeeper_client::Error) -> Self {
        let path = path.to_owned();
        move |source| Self::Operation { operation, path, source }
    }
}

/// Opens a session with the servers of `url`. Fails when no session is established within
/// about `session_timeout`.
pub async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<Client, ZkError> {
    Client::connector()
        .with_session_timeout(session_timeout)
        .connect(&url.connect_string())
        .await
        .map_err(|source| ZkError::Connect {
            servers: url.connect_string(),
            source,
        })
}

/// Creates `path` and its missing parents as persistent znodes (`mkdir -p`).
pub async fn ensure_path(client: &Client, path: &str) -> Result<(), ZkError> {
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    client.mkdir(path, &options).await.map_err(ZkError::op("mkdir", path))
}

/// One member of an election: an ephemeral sequential znode `<dir>/<prefix><sequence>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The znode's name inside the election directory, e.g. `json.info_0000000003`.
    pub name: String,
    /// The sequence number ZooKeeper appended.
    pub sequence: i64,
    /// The data the member stored (e.g. MasterInfo JSON).
    pub data: Vec<u8>,
}

/// Joins the election in `dir` by creating the ephemeral sequential znode `<dir>/<prefix>NNNNNNNNNN`
/// holding `data`; returns its name. The znode lives as long as the session. Fails on any
/// ZooKeeper error (the directory is created when missing).
pub async fn join_election(client: &Client, dir: &str, prefix: &str, data: &[u8]) -> Result<String, ZkError> {
    ensure_path(client, dir).await?;
    let path = format!("{dir}/{prefix}");
    let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, sequence) = client.create(&path, data, &options).await.map_err(ZkError::op("create", &path))?;
    Ok(format!("{prefix}{sequence}"))
}

/// Returns the leader of the election in `dir` (the member with the lowest sequence among the
/// children named `<prefix>N`) and a watcher that fires when the children change. `None` when
/// there is no member. Fails on ZooKeeper errors other than a vanished leader znode.
pub async fn election_leader(client: &Client, dir: &str, prefix: &str) -> Result<(Option<Member>, OneshotWatcher), ZkError> {
    loop {
        let (children, _, watcher) = client.get_and_watch_children(dir).await.map_err(ZkError::op("list", dir))?;
        let lowest = children
            .iter()
            .filter_map(|name| {
                let sequence = name.strip_prefix(prefix)?.parse::<i64>().ok()?;
                Some((sequence, name))
            })
            .min();
        let Some((sequence, name)) = lowest else {
            return Ok((None, watcher));
        };
        let path = format!("{dir}/{name}");
        match client.get_data(&path).await {
            Ok((data, _)) => {
                let member = Member {
                    name: name.clone(),
                    sequence,
                    data,
                };
                return Ok((Some(member), watcher));
            }
            // The leader left between the listing and the read: look again.
            Err(zookeeper_client::Error::NoNode) => continue,
            Err(source) => return Err(ZkError::op("read", &path)(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ensemble_url() {
        let url = ZkUrl::parse("zk://10.0.0.1:2181,10.0.0.2:2182/mesos").unwrap();
        assert_eq!(url.servers, vec!["10.0.0.1:2181", "10.0.0.2:2182"]);
        assert_eq!(url.path, "/mesos");
        assert_eq!(url.connect_string(), "10.0.0.1:2181,10.0.0.2:2182");
        assert_eq!(url.to_string(), "zk://10.0.0.1:2181,10.0.0.2:2182/mesos");
    }

    #[test]
    fn keeps_nested_path_and_drops_trailing_slash() {
        let url = ZkUrl::parse("zk://h:1/a/b/").unwrap();
        assert_eq!(url.path, "/a/b");
    }

    #[test]
    fn rejects_bad_urls() {
        assert!(matches!(ZkUrl::parse("http://h:1/m"), Err(ZkUrlError::Scheme(_))));
        assert!(matches!(ZkUrl::parse("zk://h:1"), Err(ZkUrlError::NoPath(_))));
        assert!(matches!(ZkUrl::parse("zk://h:1/"), Err(ZkUrlError::NoPath(_))));
        assert!(matches!(ZkUrl::parse("zk://h/m"), Err(ZkUrlError::Server { .. })));
        assert!(matches!(ZkUrl::parse("zk:///m"), Err(ZkUrlError::NoServer(_))));
    }
}

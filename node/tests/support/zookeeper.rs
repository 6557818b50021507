//! A real ZooKeeper ensemble from Debian's `zookeeper` package, on 127.0.0.1 ports chosen at run
//! time, with its data in a temporary directory; every server is killed when dropped.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Where Debian's `zookeeper` package puts the server classes (their dependencies are on the
/// jar's manifest class path).
const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";
const JAVA: &str = "/usr/bin/java";

/// ZooKeeper's tick; sessions may last 2 to 20 ticks, so 500 ms allows 1 s to 10 s sessions
/// and lets failover tests run quickly.
pub const TICK_MS: u64 = 500;

/// One server of the ensemble.
pub struct ZkServer {
    /// Its `myid`, from 1.
    pub id: usize,
    /// The client port on 127.0.0.1.
    pub client_port: u16,
    child: Option<Child>,
    config: PathBuf,
    log: PathBuf,
}

impl ZkServer {
    /// `127.0.0.1:<client port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn start(&mut self) {
        let log = std::fs::File::create(&self.log).expect("creating the ZooKeeper log file");
        let child = Command::new(JAVA)
            .args(["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(ZOOKEEPER_JAR)
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting ZooKeeper server {} with {JAVA}: {e}", self.id));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The answer to the `srvr` four-letter command, or `None` when the server does not answer.
    pub fn srvr(&self) -> Option<String> {
        four_letter(self.client_port, "srvr")
    }

    /// The ids of the sessions connected to this server (`cons`); empty when it does not answer.
    pub fn sessions(&self) -> BTreeSet<String> {
        let answer = four_letter(self.client_port, "cons").unwrap_or_default();
        answer
            .split("sid=")
            .skip(1)
            .filter_map(|rest| rest.split([',', ')']).next())
            .map(str::to_owned)
            .collect()
    }

    /// `leader`, `follower` or `standalone` once the server serves requests; `None` before.
    pub fn mode(&self) -> Option<String> {
        let answer = self.srvr()?;
        answer
            .lines()
            .find_map(|line| line.strip_prefix("Mode: "))
            .map(|mode| mode.trim().to_owned())
    }

    /// The server's log so far, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn four_letter(port: u16, command: &str) -> Option<String> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(command.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// A running ensemble of real ZooKeeper servers.
pub struct ZkEnsemble {
    /// The servers, `myid` 1..=n.
    pub servers: Vec<ZkServer>,
    // Declared after the servers so that they are killed before their data is deleted.
    _dir: tempfile::TempDir,
}

impl ZkEnsemble {
    /// Starts a 3-server ensemble and waits until it has a quorum (one leader, two followers).
    /// Panics with a message naming the Debian package when ZooKeeper is not installed, or
    /// with the servers' logs when no quorum forms within 60 s.
    pub fn start() -> Self {
        Self::start_with(3)
    }

    /// Starts an ensemble of `size` servers and waits for its quorum.
    pub fn start_with(size: usize) -> Self {
        for binary in [ZOOKEEPER_JAR, JAVA] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install the Debian package `zookeeper` (apt-get install -y zookeeper)"
            );
        }
        let dir = tempfile::tempdir().expect("creating a temporary directory for ZooKeeper");
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (free_port(), free_port(), free_port())).collect();
        let peers: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, quorum, election))| format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1))
            .collect();
        let mut servers = Vec::new();
        for (i, (client_port, _, _)) in ports.iter().enumerate() {
            let id = i + 1;
            let data = dir.path().join(format!("zk{id}"));
            std::fs::create_dir_all(&data).expect("creating a ZooKeeper data directory");
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("writing myid");
            let config = dir.path().join(format!("zoo{id}.cfg"));
            let text = format!(
                "tickTime={TICK_MS}\ninitLimit=20\nsyncLimit=5\ndataDir={data}\n\
                 clientPort={client_port}\nclientPortAddress=127.0.0.1\n\
                 quorumListenOnAllIPs=false\nadmin.enableServer=false\n\
                 4lw.commands.whitelist=srvr,ruok,stat,cons\n{standalone}{peers}",
                data = data.display(),
                standalone = if size == 1 { "standaloneEnabled=true\n" } else { "" },
                peers = if size == 1 { String::new() } else { peers.clone() },
            );
            std::fs::write(&config, text).expect("writing zoo.cfg");
            let mut server = ZkServer {
                id,
                client_port: *client_port,
                child: None,
                config,
                log: dir.path().join(format!("zk{id}.log")),
            };
            server.start();
            servers.push(server);
        }
        let ensemble = Self { servers, _dir: dir };
        ensemble.wait_for_quorum(Duration::from_secs(60));
        ensemble
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3`, the client connect string.
    pub fn connect_string(&self) -> String {
        self.servers.iter().map(ZkServer::address).collect::<Vec<_>>().join(",")
    }

    /// `zk://127.0.0.1:p1,.../<path>` as Mesos and Marathon flags take it; `path` without the
    /// leading slash, e.g. `mesos`.
    pub fn url(&self, path: &str) -> String {
        format!("zk://{}/{}", self.connect_string(), path.trim_start_matches('/'))
    }

    /// The mode of every server (`None` for one that does not serve).
    pub fn modes(&self) -> Vec<Option<String>> {
        self.servers.iter().map(ZkServer::mode).collect()
    }

    /// Waits until every running server serves, with exactly one leader when there is more than
    /// one server. Panics with the servers' logs after `timeout`.
    pub fn wait_for_quorum(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let modes: Vec<Option<String>> = self.servers.iter().filter(|s| s.child.is_some()).map(ZkServer::mode).collect();
            let serving = modes.iter().all(Option::is_some);
            let leaders = modes
                .iter()
                .filter(|m| matches!(m.as_deref(), Some("leader" | "standalone")))
                .count();
            if serving && leaders == 1 {
                return;
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = self
                    .servers
                    .iter()
                    .map(|s| format!("--- zk{} ---\n{}", s.id, s.log_tail()))
                    .collect();
                panic!("no ZooKeeper quorum after {timeout:?}: modes {modes:?}\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The ids of the sessions connected to any running server.
    pub fn connected_sessions(&self) -> BTreeSet<String> {
        self.servers
            .iter()
            .filter(|s| s.child.is_some())
            .flat_map(ZkServer::sessions)
            .collect()
    }

    /// Kills server `id` (1-based) at once.
    pub fn kill(&mut self, id: usize) {
        self.servers[id - 1].kill();
    }

    /// Restarts server `id` (1-based) with its data.
    pub fn restart(&mut self, id: usize) {
        self.servers[id - 1].kill();
        self.servers[id - 1].start();
    }
}

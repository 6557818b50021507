//! Marathon's store on a real ZooKeeper whose connection drops under a request: the request
//! is answered, not failed (a 503 on `GET /v2/apps/{id}/versions` was seen under load when
//! the client missed a ping and reconnected while the listing was in flight).

use std::sync::Arc;
use std::time::Duration;

use paas_node::marathon::store::{AppRecord, Store};
use paas_node::zk::{ZkUrl, connect};
use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::eventually;
use crate::support::zookeeper::ZkEnsemble;

/// A TCP proxy in front of one ZooKeeper server that can hold what clients send (so a request
/// is known to be in flight) and cut every open connection.
struct Proxy {
    port: u16,
    holding: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let port = listener.local_addr().unwrap().port();
        let holding: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let (cuts, _) = watch::channel(0);
        let (held, cut) = (holding.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.expect("connecting to ZooKeeper");
                tokio::spawn(relay(client, server, held.clone(), cut.subscribe()));
            }
        });
        Proxy { port, holding, cuts }
    }

    /// From now on, what clients send is kept here instead of reaching the server.
    fn hold(&self) {
        *self.holding.lock() = Some(Vec::new());
    }

    fn holds(&self, needle: &[u8]) -> bool {
        self.holding
            .lock()
            .as_ref()
            .is_some_and(|held| held.windows(needle.len()).any(|w| w == needle))
    }

    /// Closes every open connection (dropping what was held); new ones pass through.
    fn cut(&self) {
        *self.holding.lock() = None;
        self.cuts.send_modify(|n| *n += 1);
    }
}

async fn relay(client: TcpStream, server: TcpStream, holding: Arc<Mutex<Option<Vec<u8>>>>, mut cut: watch::Receiver<u64>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = client_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            let forward = match holding.lock().as_mut() {
                Some(held) => {
                    held.extend_from_slice(&buf[..n]);
                    false
                }
                None => true,
            };
            if forward {
                server_write.write_all(&buf[..n]).await?;
            }
        }
    };
    tokio::select! {
        // Cancel-safe: whichever ends first, both sockets are dropped.
        _ = upstream => {}
        _ = tokio::io::copy(&mut server_read, &mut client_write) => {}
        _ = cut.changed() => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_read_when_the_connection_drops_under_the_request() {
    let ensemble = ZkEnsemble::start_with(1);
    let proxy = Proxy::start(ensemble.servers[0].address()).await;
    let url = ZkUrl::parse(&format!("zk://127.0.0.1:{}/marathon", proxy.port)).unwrap();
    let zk = connect(&url, Duration::from_secs(10))
        .await
        .expect("a ZooKeeper session through the proxy");
    let store = Store::new("/marathon");
    store.init(&zk).await.unwrap();
    let versions = ["2026-01-01T00:00:00.000Z", "2026-01-01T00:00:01.000Z"];
    for version in versions {
        let definition = json!({ "id": "/web", "cmd": "sleep 1000" });
        let record = AppRecord {
            definition: definition.as_object().unwrap().clone(),
            version: version.to_owned(),
            version_info: None,
        };
        store.save_app(&zk, &record).await.unwrap();
    }

    proxy.hold();
    let read = tokio::spawn(async move { store.list_versions(&zk, "/web").await });
    eventually(Duration::from_secs(10), "the listing held on its way to ZooKeeper", || async {
        proxy.holds(b"/marathon/state/versions/web").then_some(())
    })
    .await;
    proxy.cut();
    let listed = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the listing to end within 30 s")
        .expect("the listing task")
        .expect("the versions, read again on the new connection");
    assert_eq!(listed, versions);
}

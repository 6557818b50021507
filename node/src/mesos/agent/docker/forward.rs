//! The agent's own port publishing for BRIDGE tasks: a userland TCP relay from `<agent
//! ip>:<hostPort>` to `<container ip>:<containerPort>`, as docker-proxy does.
//!
//! Docker's `-p` publishes on the engine's host. In the sim the agent's "host" is the slave
//! container (its own network namespace on the cluster network), so the agent relays the port
//! itself, on its own `--ip`; on a real host this works the same.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// A relay that listens while it lives: dropping it closes the port and every relayed
/// connection.
#[derive(Debug)]
pub struct Forwarder {
    /// The accept loop (which owns the relays); dropping the set aborts them all.
    _accept: JoinSet<()>,
}

impl Forwarder {
    /// Binds `bind:host_port` (address reuse on, so a restarted agent binds again at once) and
    /// relays each connection to `target`. Fails when the port cannot be bound.
    pub fn start(bind: Ipv4Addr, host_port: u16, target: SocketAddr) -> std::io::Result<Forwarder> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from((bind, host_port)))?;
        let listener = socket.listen(1024)?;
        let mut accept = JoinSet::new();
        accept.spawn(accept_loop(listener, target));
        Ok(Forwarder { _accept: accept })
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr) {
    let mut relays = JoinSet::new();
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                relays.spawn(relay(client, target));
            }
            Err(e) => {
                tracing::warn!(error = %e, %target, "accepting a connection to forward");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        // Reap finished relays so the set does not grow with the connections served.
        while relays.try_join_next().is_some() {}
    }
}

async fn relay(mut client: TcpStream, target: SocketAddr) {
    let _ = client.set_nodelay(true);
    match TcpStream::connect(target).await {
        Ok(mut upstream) => {
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        }
        // The client sees the connection closed, as a refused connection through docker-proxy.
        Err(e) => tracing::debug!(error = %e, %target, "connecting to the task container"),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn relays_both_ways_and_closes_the_port_when_dropped() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = upstream.accept().await.unwrap();
            let mut buffer = [0u8; 5];
            stream.read_exact(&mut buffer).await.unwrap();
            stream.write_all(&buffer.map(|b| b.to_ascii_uppercase())).await.unwrap();
        });
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let forwarder = Forwarder::start(Ipv4Addr::LOCALHOST, port, target).unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut answer = [0u8; 5];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HELLO");
        drop(forwarder);
        // The listener task is aborted; once it is gone, the port refuses connections.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                refused = true;
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(refused, "the port still accepts after the forwarder was dropped");
    }
}

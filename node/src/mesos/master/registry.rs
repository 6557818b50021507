//! The registry: the agents the cluster has admitted, kept in ZooKeeper under
//! `<zk path>/registry/agents/<agent id>` so that a newly elected master knows which agents to
//! wait for (Mesos keeps it in its replicated log).

use zookeeper_client::{Acls, Client, CreateMode};

use crate::zk::{self, ZkError};

/// Handle on the registry znodes.
#[derive(Clone)]
pub struct Registry {
    client: Client,
    dir: String,
}

impl Registry {
    /// The registry of the cluster whose znodes live under `root` (e.g. `/mesos`).
    pub fn new(client: Client, root: &str) -> Self {
        Self {
            client,
            dir: format!("{root}/registry/agents"),
        }
    }

    /// The ids of the admitted agents. Fails on ZooKeeper errors.
    pub async fn agents(&self) -> Result<Vec<String>, ZkError> {
        zk::ensure_path(&self.client, &self.dir).await?;
        self.client.list_children(&self.dir).await.map_err(|source| ZkError::Operation {
            operation: "list",
            path: self.dir.clone(),
            source,
        })
    }

    /// Records an admitted agent (replacing an older record). Fails on ZooKeeper errors.
    pub async fn add(&self, agent_id: &str, data: &[u8]) -> Result<(), ZkError> {
        zk::ensure_path(&self.client, &self.dir).await?;
        let path = format!("{}/{agent_id}", self.dir);
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        let result = match self.client.create(&path, data, &options).await {
            Err(zookeeper_client::Error::NodeExists) => self.client.set_data(&path, data, None).await.map(|_| ()),
            other => other.map(|_| ()),
        };
        result.map_err(|source| ZkError::Operation {
            operation: "write",
            path,
            source,
        })
    }

    /// Forgets an agent; forgetting an unknown one is not an error.
    pub async fn remove(&self, agent_id: &str) -> Result<(), ZkError> {
        let path = format!("{}/{agent_id}", self.dir);
        match self.client.delete(&path, None).await {
            Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
            Err(source) => Err(ZkError::Operation {
                operation: "delete",
                path,
                source,
            }),
        }
    }
}

//! Marathon's state in ZooKeeper, under the `--zk` path: apps (with their versions), the tasks
//! it launched (so a new leader re-adopts them instead of starting them again) and the
//! framework id (so a new leader re-subscribes as the same framework).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zookeeper_client::{Acls, Client, CreateMode, Error as ZkClientError};

use super::wire::VersionInfo;
use crate::zk::ZkError;

/// A launched task as persisted: enough to reconcile it and to serve it until Mesos answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub app_id: String,
    pub agent_id: String,
    pub host: String,
    pub ports: Vec<u64>,
    pub version: String,
    pub staged_at: String,
    /// The last state Mesos reported, so a new leader serves running tasks as running until
    /// reconciliation answers.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
}

/// A persisted app: the normalized definition, its version and version info. The definition
/// is kept as plain JSON so a record this version cannot read is reported and skipped by the
/// loader rather than failing the whole load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppRecord {
    pub definition: Map<String, Value>,
    pub version: String,
    /// Absent in records of older versions: then both times are `version`.
    #[serde(default)]
    pub version_info: Option<VersionInfo>,
}

/// A group as persisted: what it holds besides its apps (which live under their own ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub id: String,
    pub dependencies: Vec<String>,
    pub version: String,
}

/// The znode paths of one Marathon cluster.
#[derive(Debug, Clone)]
pub struct Store {
    root: String,
}

fn op(operation: &'static str, path: &str) -> impl FnOnce(ZkClientError) -> ZkError {
    let path = path.to_owned();
    move |source| ZkError::Operation { operation, path, source }
}

/// How many times one request is sent when connections keep dropping under it.
const ATTEMPTS: usize = 3;

/// Sends a request again when ZooKeeper's client lost its connection while the request was in
/// flight. The client fails such a request with [`ZkClientError::ConnectionLoss`] instead of
/// resending it, since it cannot know whether the server applied it; it keeps the session and
/// holds requests made while it reconnects until the new connection is up. Left alone, a
/// loaded server missing one ping (a second and a half with a 10 s session) turns a read into
/// a 503. Every request of this store is safe to repeat: reads, writes without a version,
/// creates whose `NodeExists` turns into a write, deletes that accept a missing node.
async fn again_on_connection_loss<T, F, Fut>(mut request: F) -> Result<T, ZkClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ZkClientError>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(ZkClientError::ConnectionLoss) if attempt < ATTEMPTS => {
                tracing::debug!(attempt, "ZooKeeper connection lost under a request; sending it again");
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// `/shop/cart` → `shop%2Fcart`: znode names cannot hold `/`, and app ids cannot hold `%`.
fn encode(id: &str) -> String {
    id.trim_start_matches('/').replace('/', "%2F")
}

impl Store {
    pub fn new(root: &str) -> Store {
        Store {
            root: root.trim_end_matches('/').to_owned(),
        }
    }

    /// Where the leader election lives.
    pub fn leader_dir(&self) -> String {
        format!("{}/leader", self.root)
    }

    fn apps(&self) -> String {
        format!("{}/state/apps", self.root)
    }

    fn versions(&self) -> String {
        format!("{}/state/versions", self.root)
    }

    fn groups(&self) -> String {
        format!("{}/state/groups", self.root)
    }

    fn tasks(&self) -> String {
        format!("{}/state/tasks", self.root)
    }

    fn framework_id_path(&self) -> String {
        format!("{}/state/framework-id", self.root)
    }

    /// Creates the folders. Fails on ZooKeeper errors.
    pub async fn init(&self, zk: &Client) -> Result<(), ZkError> {
        for dir in [self.apps(), self.tasks(), self.versions(), self.groups(), self.leader_dir()] {
            mkdir(zk, &dir).await?;
        }
        Ok(())
    }

    async fn put(&self, zk: &Client, path: &str, data: &[u8]) -> Result<(), ZkError> {
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        again_on_connection_loss(|| async {
            match zk.set_data(path, data, None).await {
                Ok(_) => Ok(()),
                Err(ZkClientError::NoNode) => match zk.create(path, data, &options).await {
                    // Created meanwhile (by an attempt whose answer was lost, or a peer): write.
                    Err(ZkClientError::NodeExists) => zk.set_data(path, data, None).await.map(|_| ()),
                    result => result.map(|_| ()),
                },
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(op("write", path))
    }

    async fn remove(&self, zk: &Client, path: &str) -> Result<(), ZkError> {
        match again_on_connection_loss(|| zk.delete(path, None)).await {
            Ok(()) | Err(ZkClientError::NoNode) => Ok(()),
            Err(e) => Err(op("delete", path)(e)),
        }
    }

    async fn load_all<T: for<'de> Deserialize<'de>>(&self, zk: &Client, dir: &str) -> Result<Vec<T>, ZkError> {
        let names = again_on_connection_loss(|| zk.list_children(dir)).await.map_err(op("list", dir))?;
        let mut out = Vec::new();
        for name in names {
            let path = format!("{dir}/{name}");
            match again_on_connection_loss(|| zk.get_data(&path)).await {
                Ok((data, _)) => match serde_json::from_slice(&data) {
                    Ok(item) => out.push(item),
                    Err(e) => tracing::warn!(%path, error = %e, "skipping an unreadable record"),
                },
                Err(ZkClientError::NoNode) => {}
                Err(e) => return Err(op("read", &path)(e)),
            }
        }
        Ok(out)
    }

    /// Saves the app and keeps this version in its history.
    pub async fn save_app(&self, zk: &Client, app: &AppRecord) -> Result<(), ZkError> {
        let id = app.definition.get("id").and_then(Value::as_str).unwrap_or_default();
        // Strings, numbers and maps with string keys: serializing cannot fail.
        let data = serde_json::to_vec(app).expect("an app record serializes");
        let history = format!("{}/{}", self.versions(), encode(id));
        mkdir(zk, &history).await?;
        // Version names are timestamps; `:` is fine in a znode name.
        self.put(zk, &format!("{history}/{}", app.version), &data).await?;
        self.put(zk, &format!("{}/{}", self.apps(), encode(id)), &data).await
    }

    /// Removes the app and its history.
    pub async fn delete_app(&self, zk: &Client, id: &str) -> Result<(), ZkError> {
        self.remove(zk, &format!("{}/{}", self.apps(), encode(id))).await?;
        let history = format!("{}/{}", self.versions(), encode(id));
        match again_on_connection_loss(|| zk.list_children(&history)).await {
            Ok(names) => {
                for name in names {
                    self.remove(zk, &format!("{history}/{name}")).await?;
                }
                self.remove(zk, &history).await
            }
            Err(ZkClientError::NoNode) => Ok(()),
            Err(e) => Err(op("list", &history)(e)),
        }
    }

    /// The versions kept of an app, oldest first.
    pub async fn list_versions(&self, zk: &Client, id: &str) -> Result<Vec<String>, ZkError> {
        let history = format!("{}/{}", self.versions(), encode(id));
        match again_on_connection_loss(|| zk.list_children(&history)).await {
            Ok(mut names) => {
                names.sort();
                Ok(names)
            }
            Err(ZkClientError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(op("list", &history)(e)),
        }
    }

    /// One kept version of an app, if there is one and it reads.
    pub async fn load_version(&self, zk: &Client, id: &str, version: &str) -> Result<Option<AppRecord>, ZkError> {
        if version.contains('/') || version.is_empty() {
            return Ok(None);
        }
        let path = format!("{}/{}/{version}", self.versions(), encode(id));
        match again_on_connection_loss(|| zk.get_data(&path)).await {
            Ok((data, _)) => Ok(serde_json::from_slice(&data).ok()),
            Err(ZkClientError::NoNode | ZkClientError::BadArguments(_)) => Ok(None),
            Err(e) => Err(op("read", &path)(e)),
        }
    }

    pub async fn load_apps(&self, zk: &Client) -> Result<Vec<AppRecord>, ZkError> {
        self.load_all(zk, &self.apps()).await
    }

    /// Saves a group's own record (`/` included).
    pub async fn save_group(&self, zk: &Client, group: &GroupRecord) -> Result<(), ZkError> {
        let name = if group.id == "/" { "%2F".to_owned() } else { encode(&group.id) };
        let data = serde_json::to_vec(group).expect("a group record serializes");
        self.put(zk, &format!("{}/{name}", self.groups()), &data).await
    }

    pub async fn delete_group(&self, zk: &Client, id: &str) -> Result<(), ZkError> {
        let name = if id == "/" { "%2F".to_owned() } else { encode(id) };
        self.remove(zk, &format!("{}/{name}", self.groups())).await
    }

    pub async fn load_groups(&self, zk: &Client) -> Result<Vec<GroupRecord>, ZkError> {
        let groups = self.groups();
        match again_on_connection_loss(|| zk.list_children(&groups)).await {
            Ok(_) => self.load_all(zk, &groups).await,
            // Stores written before groups were kept have no folder for them.
            Err(ZkClientError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(op("list", &groups)(e)),
        }
    }

    pub async fn save_task(&self, zk: &Client, task: &TaskRecord) -> Result<(), ZkError> {
        let path = format!("{}/{}", self.tasks(), task.id);
        self.put(zk, &path, &serde_json::to_vec(task).expect("serializes")).await
    }

    pub async fn delete_task(&self, zk: &Client, id: &str) -> Result<(), ZkError> {
        self.remove(zk, &format!("{}/{id}", self.tasks())).await
    }

    pub async fn load_tasks(&self, zk: &Client) -> Result<Vec<TaskRecord>, ZkError> {
        self.load_all(zk, &self.tasks()).await
    }

    pub async fn save_framework_id(&self, zk: &Client, id: &str) -> Result<(), ZkError> {
        self.put(zk, &self.framework_id_path(), id.as_bytes()).await
    }

    pub async fn load_framework_id(&self, zk: &Client) -> Result<Option<String>, ZkError> {
        let path = self.framework_id_path();
        match again_on_connection_loss(|| zk.get_data(&path)).await {
            Ok((data, _)) => Ok(Some(String::from_utf8_lossy(&data).into_owned())),
            Err(ZkClientError::NoNode) => Ok(None),
            Err(e) => Err(op("read", &path)(e)),
        }
    }
}

/// Creates `path` and its missing parents (`mkdir -p`), again after a lost connection.
async fn mkdir(zk: &Client, path: &str) -> Result<(), ZkError> {
    let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
    again_on_connection_loss(|| zk.mkdir(path, &options))
        .await
        .map_err(op("mkdir", path))
}

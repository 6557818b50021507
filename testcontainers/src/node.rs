//! Single-container modules built from the node image and a node configuration.

use std::borrow::Cow;

use paas_core::render::{ConfigFile, NodeConfig, Program, paths, ports};
use paas_docker::container::NODE_CONFIG_PATH;
use testcontainers::Image;
use testcontainers::core::{ContainerPort, CopyToContainer, WaitFor};

/// The node image: `paas-sim:<hash of its inputs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeImage {
    pub name: String,
    pub tag: String,
}

impl NodeImage {
    /// The tag the current inputs (the `paas-node` binary, the base recipe) hash to. Does not
    /// build anything; see [`ensure_images`].
    ///
    /// # Panics
    /// When the `paas-node` binary cannot be found (build it with `cargo build --workspace --bins --tests`).
    pub fn current() -> NodeImage {
        let inputs =
            paas_docker::images::ImageInputs::from_env().expect("finding paas-node (build it: cargo build --workspace --bins --tests)");
        let node = inputs.tags().expect("hashing the image inputs").node;
        let (name, tag) = node.split_once(':').expect("tags are name:tag");
        NodeImage {
            name: name.into(),
            tag: tag.into(),
        }
    }
}

/// Builds the sim images if they are missing (the base takes a few minutes the first time).
pub async fn ensure_images() -> Result<NodeImage, paas_docker::sim::SimError> {
    let tag = paas_docker::sim::ensure_images(&|_| {}).await?;
    let (name, tag) = tag.split_once(':').expect("tags are name:tag");
    Ok(NodeImage {
        name: name.into(),
        tag: tag.into(),
    })
}

fn node_json(config: &NodeConfig) -> CopyToContainer {
    CopyToContainer::new(serde_json::to_vec(config).expect("serializes"), NODE_CONFIG_PATH)
}

/// zoo.cfg and a `myid` (Debian's default one holds placeholder text ZooKeeper refuses).
fn zookeeper_files(cfg: String) -> Vec<ConfigFile> {
    vec![
        ConfigFile {
            path: paths::ZOO_CFG.into(),
            content: cfg,
        },
        ConfigFile {
            path: paths::ZOOKEEPER_MYID.into(),
            content: "1\n".into(),
        },
    ]
}

const ENTRYPOINT: &str = paas_docker::images::NODE_BINARY_IN_IMAGE;
const CMD: [&str; 3] = ["supervise", "--config", NODE_CONFIG_PATH];

/// A standalone ZooKeeper on port 2181.
#[derive(Debug, Clone)]
pub struct ZooKeeper {
    image: NodeImage,
    config: [CopyToContainer; 1],
}

impl Default for ZooKeeper {
    fn default() -> Self {
        ZooKeeper::with_image(NodeImage::current())
    }
}

impl ZooKeeper {
    pub fn with_image(image: NodeImage) -> ZooKeeper {
        let cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nmaxClientCnxns=0\n4lw.commands.whitelist=ruok,mntr,srvr,stat\nadmin.enableServer=false\n",
            paths::ZOOKEEPER_DATA,
            ports::ZOOKEEPER
        );
        let config = NodeConfig {
            files: zookeeper_files(cfg),
            programs: vec![Program {
                name: "zookeeper".into(),
                args: vec![paths::ZOO_CFG.into()],
            }],
        };
        ZooKeeper {
            image,
            config: [node_json(&config)],
        }
    }
}

/// A master machine: ZooKeeper, the Mesos master (5050) and Marathon (8080), a cluster of one
/// master. Ready once Marathon is elected leader; ZooKeeper's JVM takes a while to start, so
/// give it a startup timeout of a few minutes on a loaded machine
/// (`ImageExt::with_startup_timeout`).
#[derive(Debug, Clone)]
pub struct Master {
    image: NodeImage,
    config: [CopyToContainer; 1],
}

impl Default for Master {
    fn default() -> Self {
        Master::with_image(NodeImage::current())
    }
}

impl Master {
    pub fn with_image(image: NodeImage) -> Master {
        let zk = |path: &str| format!("--{path}=zk://127.0.0.1:{}/", ports::ZOOKEEPER);
        let cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nmaxClientCnxns=0\nadmin.enableServer=false\n",
            paths::ZOOKEEPER_DATA,
            ports::ZOOKEEPER
        );
        let config = NodeConfig {
            files: zookeeper_files(cfg),
            programs: vec![
                Program {
                    name: "zookeeper".into(),
                    args: vec![paths::ZOO_CFG.into()],
                },
                Program {
                    name: "mesos-master".into(),
                    // Bound to every address so the mapped port reaches it; Marathon in the same
                    // container reaches it at that address too.
                    args: vec![
                        format!("{}mesos", zk("zk")),
                        "--quorum=1".into(),
                        "--ip=0.0.0.0".into(),
                        format!("--port={}", ports::MESOS_MASTER),
                    ],
                },
                Program {
                    name: "marathon".into(),
                    args: vec![
                        format!("{}mesos", zk("master")),
                        format!("{}marathon", zk("zk")),
                        format!("--http_port={}", ports::MARATHON),
                        "--hostname=127.0.0.1".into(),
                    ],
                },
            ],
        };
        Master {
            image,
            config: [node_json(&config)],
        }
    }
}

/// The `Image` of a module: the node image, `paas-node supervise` on the module's
/// configuration, its ports, and the log lines that mean ready, in order.
macro_rules! node_module {
    ($module:ident, ports: [$($port:expr),*], ready: [$($line:expr),*]) => {
        impl Image for $module {
            fn name(&self) -> &str {
                &self.image.name
            }
            fn tag(&self) -> &str {
                &self.image.tag
            }
            fn ready_conditions(&self) -> Vec<WaitFor> {
                vec![$(WaitFor::message_on_either_std($line)),*]
            }
            fn entrypoint(&self) -> Option<&str> {
                Some(ENTRYPOINT)
            }
            fn env_vars(&self) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
                // Plain log lines, so ready conditions match whatever the terminal.
                [("NO_COLOR", "1")]
            }
            fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
                CMD
            }
            fn copy_to_sources(&self) -> impl IntoIterator<Item = &CopyToContainer> {
                &self.config
            }
            fn expose_ports(&self) -> &[ContainerPort] {
                &[$(ContainerPort::Tcp($port)),*]
            }
        }
    };
}

node_module!(ZooKeeper, ports: [ports::ZOOKEEPER], ready: ["binding to port"]);
node_module!(Master, ports: [ports::ZOOKEEPER, ports::MESOS_MASTER, ports::MARATHON], ready: ["binding to port", "elected leader"]);

//! EC2 instances: one per node, at its planned address, with cloud-init user-data.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    HttpTokensState, IamInstanceProfileSpecification, Instance, InstanceMetadataEndpointState, InstanceMetadataOptionsRequest,
    InstanceNetworkInterfaceSpecification, InstanceStateName, ResourceType,
};
use base64::Engine as _;
use paas_core::backend::{NodeOp, Resolved};
use paas_core::render::userdata::{self, NodeArtifact};
use paas_core::resource::{NodeHost, Resource, ResourceSpec};
use paas_core::topology::Role;
use paas_core::{BackendError, Observed};

use crate::error::{aws, code, creating};
use crate::network::{filter, observed, wrong_spec};
use crate::tags::{self, Marks};
use crate::{AwsBackend, dep};

/// Whether EC2 refused an instance profile it cannot see yet.
fn young_profile<E: aws_sdk_ec2::error::ProvideErrorMetadata, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> bool {
    code(err).as_deref() == Some("InvalidParameterValue")
        && aws_sdk_ec2::error::ProvideErrorMetadata::message(err).is_some_and(|m| m.to_ascii_lowercase().contains("instance profile"))
}

/// Instance states that still count as the node existing.
const LIVE: &[&str] = &["pending", "running", "stopping", "stopped"];

fn instance_attrs(i: &Instance) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let mut put = |k: &str, v: Option<&str>| {
        if let Some(v) = v {
            attrs.insert(k.to_string(), v.to_string());
        }
    };
    put("private_ip", i.private_ip_address());
    put("public_ip", i.public_ip_address());
    put("az", i.placement().and_then(|p| p.availability_zone()));
    put("subnet", i.subnet_id());
    put("state", i.state().and_then(|s| s.name()).map(|n| n.as_str()));
    attrs
}

impl AwsBackend {
    pub(crate) async fn list_instances(&self, cluster: &str) -> Result<Vec<Observed>, BackendError> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a cluster has far fewer than 100 pages of instances.
        for _ in 0..100 {
            let out = self
                .clients
                .ec2
                .describe_instances()
                .filters(tags::cluster_filter(cluster))
                .filters(filter("instance-state-name", LIVE))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| aws("describe instances", cluster, e))?;
            for i in out.reservations().iter().flat_map(|r| r.instances()) {
                found.extend(tags::observed(
                    cluster,
                    tags::ec2_pairs(i.tags()),
                    i.instance_id().unwrap_or_default(),
                    instance_attrs(i),
                ));
            }
            token = out.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(found)
    }

    /// The AMI to boot: the given one, or the newest available image matching the name pattern
    /// of the owner (looked up once per process).
    async fn ami(&self, resource: &Resource, ami: &Option<String>, name: &str, owner: &str) -> Result<String, BackendError> {
        if let Some(ami) = ami {
            return Ok(ami.clone());
        }
        let key = (name.to_string(), owner.to_string());
        if let Some(id) = self.amis.lock().expect("not poisoned").get(&key) {
            return Ok(id.clone());
        }
        let out = self
            .clients
            .ec2
            .describe_images()
            .owners(owner)
            .filters(filter("name", &[name]))
            .filters(filter("state", &["available"]))
            .send()
            .await
            .map_err(|e| aws("describe images", &resource.id, e))?;
        let newest = out
            .images()
            .iter()
            .max_by_key(|i| i.creation_date().unwrap_or_default().to_string())
            .and_then(|i| i.image_id())
            .ok_or_else(|| {
                BackendError::failed(
                    "find ami",
                    &resource.id,
                    format!("no available image named {name} owned by {owner} in {}", self.clients.region),
                )
            })?
            .to_string();
        self.amis.lock().expect("not poisoned").insert(key, newest.clone());
        Ok(newest)
    }

    /// Runs the instance (tagged in the same call) and waits until it is running.
    pub(crate) async fn create_instance(&self, cluster: &str, resource: &Resource, deps: &Resolved) -> Result<Observed, BackendError> {
        let ResourceSpec::Node(node) = &resource.spec else {
            return Err(wrong_spec(resource));
        };
        let NodeHost::Instance {
            instance_type,
            ami,
            ami_name,
            ami_owner,
            subnet,
            security_groups,
            key_pair,
            public_ip,
            profile,
            artifact,
        } = &node.host
        else {
            return Err(BackendError::failed("run instance", &resource.id, "the node is not an instance"));
        };
        let image = self.ami(resource, ami, ami_name, ami_owner).await?;
        let subnet = &dep(deps, &resource.id, subnet)?.provider_id;
        let groups = security_groups
            .iter()
            .map(|g| dep(deps, &resource.id, g).map(|o| o.provider_id.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let key = dep(deps, &resource.id, key_pair)?;
        let key_name = key.attrs.get("name").cloned().unwrap_or_else(|| key_pair.name().to_string());
        let profile = dep(deps, &resource.id, profile)?;
        let profile_name = profile.attrs.get("name").cloned().unwrap_or_else(|| profile.provider_id.clone());
        let artifact = match artifact {
            Some(artifact) => {
                let object = dep(deps, &resource.id, &artifact.object)?;
                let attr = |key: &str| object.attrs.get(key).cloned().unwrap_or_default();
                Some(NodeArtifact {
                    bucket: attr("bucket"),
                    key: attr("key"),
                    sha256: artifact.sha256.clone(),
                    region: self.clients.region.clone(),
                    endpoint: self.clients.endpoint_url.clone(),
                })
            }
            None => None,
        };
        let user_data = userdata::cloud_config(&node.config, artifact.as_ref()).map_err(|size| {
            BackendError::failed(
                "render user-data",
                &resource.id,
                format!("{size} bytes, over the {} byte limit", userdata::MAX_BYTES),
            )
        })?;
        let marks = Marks::new(cluster, resource, node.role.as_str(), Some(&node.az), true);
        let interface = InstanceNetworkInterfaceSpecification::builder()
            .device_index(0)
            .subnet_id(subnet)
            .private_ip_address(node.address.to_string())
            .associate_public_ip_address(*public_ip)
            .set_groups(Some(groups))
            .build();
        let run = || {
            self.clients
                .ec2
                .run_instances()
                .image_id(&image)
                .instance_type(instance_type.as_str().into())
                .min_count(1)
                .max_count(1)
                .key_name(&key_name)
                .network_interfaces(interface.clone())
                .iam_instance_profile(IamInstanceProfileSpecification::builder().name(&profile_name).build())
                // IMDSv2 only: credentials need a session token from a PUT, which one hop cannot
                // make from inside a task's container.
                .metadata_options(
                    InstanceMetadataOptionsRequest::builder()
                        .http_endpoint(InstanceMetadataEndpointState::Enabled)
                        .http_tokens(HttpTokensState::Required)
                        .http_put_response_hop_limit(1)
                        .build(),
                )
                .user_data(base64::engine::general_purpose::STANDARD.encode(&user_data))
                .tag_specifications(marks.ec2_spec(ResourceType::Instance))
                .tag_specifications(marks.ec2_spec(ResourceType::Volume))
                .send()
        };
        // A profile made a moment ago is not visible to EC2 yet ("Invalid IAM Instance Profile
        // name"; IAM is eventually consistent, for seconds): no instance was launched, so
        // asking again is safe. Any other failure may have launched one and goes to the engine,
        // whose retry looks first.
        let deadline = tokio::time::Instant::now() + self.waits.timeout;
        let out = loop {
            match run().await {
                Ok(out) => break out,
                Err(e) if young_profile(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(self.waits.interval).await;
                }
                Err(e) => return Err(creating(aws("run instance", &resource.id, e))),
            }
        };
        let first = out
            .instances()
            .first()
            .cloned()
            .ok_or_else(|| BackendError::failed("run instance", &resource.id, "the answer holds no instance"))?;
        let id = first.instance_id().unwrap_or_default().to_string();
        let running = if first.state().and_then(|s| s.name()) == Some(&InstanceStateName::Running) {
            first
        } else {
            self.wait_instance(resource.id.as_str(), &id, InstanceStateName::Running)
                .await?
                .unwrap_or(first)
        };
        if node.role == Role::Lb {
            self.join_load_balancer(cluster, resource, &id).await?;
        }
        Ok(observed(resource, id, instance_attrs(&running)))
    }

    /// Registers a new lb with the cluster's ELB when there is one already: an lb replaced in
    /// a roll serves again as soon as it passes the ELB's health check, not once every lb is
    /// replaced and the ELB updated (which registers it again, harmlessly).
    async fn join_load_balancer(&self, cluster: &str, resource: &Resource, instance: &str) -> Result<(), BackendError> {
        let Some(elb) = self.list_load_balancer(cluster).await?.into_iter().next() else {
            return Ok(());
        };
        self.clients
            .elb
            .register_instances_with_load_balancer()
            .load_balancer_name(&elb.provider_id)
            .instances(
                aws_sdk_elasticloadbalancing::types::Instance::builder()
                    .instance_id(instance)
                    .build(),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| creating(aws("register with the elb", &resource.id, e)))
    }

    /// Polls the instance until it reaches `wanted`; `None` when it is gone.
    async fn wait_instance(&self, what: &str, id: &str, wanted: InstanceStateName) -> Result<Option<Instance>, BackendError> {
        self.wait_for("wait for instance", what, || async {
            let out = self
                .clients
                .ec2
                .describe_instances()
                .instance_ids(id)
                .send()
                .await
                .map_err(|e| creating(aws("describe instance", what, e)))?;
            let instance = out.reservations().iter().flat_map(|r| r.instances()).next().cloned();
            match instance {
                None => Ok(Some(None)),
                Some(i) if i.state().and_then(|s| s.name()) == Some(&wanted) => Ok(Some(Some(i))),
                Some(i)
                    if wanted == InstanceStateName::Running
                        && matches!(
                            i.state().and_then(|s| s.name()),
                            Some(InstanceStateName::Terminated | InstanceStateName::ShuttingDown)
                        ) =>
                {
                    Err(BackendError::failed(
                        "wait for instance",
                        what,
                        "the instance stopped while starting",
                    ))
                }
                Some(_) => Ok(None),
            }
        })
        .await
    }

    /// Terminates the instance and waits until it is terminated: its network interface keeps
    /// the subnet and security groups in use until then.
    pub(crate) async fn terminate_instance(&self, current: &Observed) -> Result<(), BackendError> {
        self.clients
            .ec2
            .terminate_instances()
            .instance_ids(&current.provider_id)
            .send()
            .await
            .map_err(|e| aws("terminate instance", &current.id, e))?;
        self.wait_instance(current.id.as_str(), &current.provider_id, InstanceStateName::Terminated)
            .await
            .map(|_| ())
    }

    /// Stops, starts or kills a node. Pausing has no EC2 equivalent.
    pub(crate) async fn instance_op(&self, node: &Observed, op: NodeOp) -> Result<(), BackendError> {
        let ec2 = &self.clients.ec2;
        let id = &node.provider_id;
        match op {
            NodeOp::Stop => ec2
                .stop_instances()
                .instance_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("stop instance", &node.id, e)),
            NodeOp::Kill => ec2
                .stop_instances()
                .instance_ids(id)
                .force(true)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("kill instance", &node.id, e)),
            NodeOp::Start => ec2
                .start_instances()
                .instance_ids(id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| aws("start instance", &node.id, e)),
            NodeOp::Pause | NodeOp::Unpause => Err(BackendError::failed(
                "node operation",
                &node.id,
                "EC2 instances cannot be paused; stop or kill them instead",
            )),
        }
    }
}

//! The SDK clients of one cluster, built from explicit settings, and the count of API calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Where the clients send their calls and with which credentials.
#[derive(Debug, Clone)]
pub enum Connection {
    /// The standard AWS chain (environment, profile, SSO...), optionally at another endpoint.
    Chain {
        region: Option<String>,
        profile: Option<String>,
        endpoint_url: Option<String>,
    },
    /// Fixed credentials at a fixed endpoint: an emulator such as moto. Reads no file and no
    /// metadata service.
    Static {
        region: String,
        endpoint_url: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

/// Counts every HTTP request the clients send (retries included) and can fail one on purpose.
#[derive(Debug, Default)]
pub struct CallCounter {
    calls: AtomicU64,
    /// Fail the request with this 1-based number (0: never): a crash in the middle of an apply.
    fail_at: AtomicU64,
}

impl CallCounter {
    /// Requests sent so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Makes request number `n` from now on fail before it is sent (`None`: never).
    pub fn fail_after(&self, n: Option<u64>) {
        let at = n.map_or(0, |n| self.calls() + n);
        self.fail_at.store(at, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone)]
struct Counting(Arc<CallCounter>);

/// The error an injected failure gives.
#[derive(Debug, thiserror::Error)]
#[error("request {0} failed on purpose (injected fault)")]
pub struct InjectedFault(u64);

impl Intercept for Counting {
    fn name(&self) -> &'static str {
        "paas-call-counter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let n = self.0.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.0.fail_at.load(Ordering::SeqCst) == n {
            return Err(Box::new(InjectedFault(n)));
        }
        Ok(())
    }
}

/// The EC2, classic ELB, Route53, S3 and IAM clients.
#[derive(Debug, Clone)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancing::Client,
    pub route53: aws_sdk_route53::Client,
    pub s3: aws_sdk_s3::Client,
    pub iam: aws_sdk_iam::Client,
    pub counter: Arc<CallCounter>,
    pub region: String,
    /// The endpoint every call goes to when it is not AWS's own (an emulator): instances then
    /// fetch their binary from there too.
    pub endpoint_url: Option<String>,
}

/// An S3 client on `builder`: path-style addressing at an emulator (its host name cannot take
/// a bucket in front), and checksums only where S3 requires them, so an upload is one plain
/// request every S3 implementation understands.
fn s3_client(builder: aws_sdk_s3::config::Builder, emulator: bool) -> aws_sdk_s3::Client {
    let config = builder
        .force_path_style(emulator)
        .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The one HTTPS client every service and the credential providers share: rustls with ring,
/// trusting the system's roots, as the SDK's default client does with aws-lc.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Why the clients could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no AWS region: give --region, set it in the spec, or set AWS_REGION")]
    NoRegion,
}

impl Clients {
    /// Builds the clients. `Static` touches nothing but the endpoint; `Chain` reads the
    /// standard AWS configuration. Fails when no region is known.
    pub async fn connect(connection: &Connection) -> Result<Clients, ConnectError> {
        let counter = Arc::new(CallCounter::default());
        let interceptor = Counting(counter.clone());
        let http = https_client();
        // Each service has a config builder of its own type, with the same setters: `$config!`
        // gives the builder of the service crate it is called with, set up for this connection.
        macro_rules! clients {
            ($config:ident, region: $region:expr, endpoint_url: $endpoint_url:expr) => {{
                let endpoint_url: Option<String> = $endpoint_url;
                Clients {
                    ec2: aws_sdk_ec2::Client::from_conf($config!(aws_sdk_ec2).build()),
                    elb: aws_sdk_elasticloadbalancing::Client::from_conf($config!(aws_sdk_elasticloadbalancing).build()),
                    route53: aws_sdk_route53::Client::from_conf($config!(aws_sdk_route53).build()),
                    s3: s3_client($config!(aws_sdk_s3), endpoint_url.is_some()),
                    iam: aws_sdk_iam::Client::from_conf($config!(aws_sdk_iam).build()),
                    counter,
                    region: $region,
                    endpoint_url,
                }
            }};
        }
        match connection {
            Connection::Static {
                region,
                endpoint_url,
                access_key_id,
                secret_access_key,
            } => {
                let credentials = Credentials::new(access_key_id, secret_access_key, None, None, "paas-static");
                let region = aws_config::Region::new(region.clone());
                macro_rules! static_config {
                    ($sdk:ident) => {
                        $sdk::Config::builder()
                            .behavior_version_latest()
                            .region(region.clone())
                            .credentials_provider(credentials.clone())
                            .endpoint_url(endpoint_url)
                            .interceptor(interceptor.clone())
                            .http_client(http.clone())
                    };
                }
                Ok(clients!(static_config, region: region.to_string(), endpoint_url: Some(endpoint_url.clone())))
            }
            Connection::Chain {
                region,
                profile,
                endpoint_url,
            } => {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
                if let Some(region) = region {
                    loader = loader.region(aws_config::Region::new(region.clone()));
                }
                if let Some(profile) = profile {
                    loader = loader.profile_name(profile);
                }
                if let Some(url) = endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let shared = loader.load().await;
                let region = shared.region().ok_or(ConnectError::NoRegion)?.to_string();
                macro_rules! chain_config {
                    ($sdk:ident) => {
                        $sdk::config::Builder::from(&shared).interceptor(interceptor.clone())
                    };
                }
                Ok(clients!(chain_config, region: region, endpoint_url: endpoint_url.clone()))
            }
        }
    }

    /// The region's available zones, sorted by name.
    pub async fn zones(&self) -> Result<Vec<String>, paas_core::BackendError> {
        let out = self
            .ec2
            .describe_availability_zones()
            .filters(aws_sdk_ec2::types::Filter::builder().name("state").values("available").build())
            .send()
            .await
            .map_err(|e| crate::error::aws("describe availability zones", &self.region, e))?;
        let mut zones: Vec<String> = out
            .availability_zones()
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        zones.sort();
        Ok(zones)
    }
}

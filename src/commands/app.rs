//! `paas app deploy|scale|list|rm`: a thin client of Marathon's REST API (`/v2/apps`), usable
//! against the sim, an AWS cluster, or any Marathon.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use paas_core::app::AppFile;
use paas_core::http::HttpClient;
use serde_json::{Value, json};

use crate::cli::{GlobalArgs, OutputFormat};
use crate::context::{BadInput, Context};

/// Flags of `paas app`.
#[derive(Debug, Args)]
pub struct AppArgs {
    /// Marathon's URL. Default: the cluster's admin entry on its plain Marathon port, `http://127.0.0.1:<sim.marathon_port>/`.
    #[arg(long, global = true, env = "PAAS_MARATHON", value_name = "URL")]
    pub marathon: Option<String>,
    #[command(subcommand)]
    pub command: AppCommand,
}

/// What to do with apps.
#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Creates the app of a Marathon app definition (JSON), or updates it if it exists.
    Deploy {
        /// The app definition, as Marathon takes it.
        file: std::path::PathBuf,
        #[command(flatten)]
        force: Force,
    },
    /// Sets an app's instance count.
    Scale {
        /// The app id, e.g. `/www` or `www`.
        id: String,
        instances: u32,
        #[command(flatten)]
        force: Force,
    },
    /// Lists apps with running, healthy and desired instance counts.
    List,
    /// Removes an app and its tasks.
    Rm {
        /// The app id, e.g. `/www` or `www`.
        id: String,
        #[command(flatten)]
        force: Force,
    },
}

/// Marathon's `?force=true`: a change to an app that a deployment holds (one that cannot
/// finish, say, for want of offers) is refused with 409 unless forced; forcing cancels that
/// deployment and starts the new one.
#[derive(Debug, Clone, Copy, Args)]
pub struct Force {
    /// Override the deployment that holds the app (Marathon's `?force=true`).
    #[arg(long)]
    pub force: bool,
}

impl Force {
    /// `path` with `?force=true` when forced.
    fn on(self, path: &str) -> String {
        if self.force {
            format!("{path}?force=true")
        } else {
            path.to_string()
        }
    }
}

/// Runs one `paas app` command.
pub async fn run(global: &GlobalArgs, args: AppArgs) -> anyhow::Result<()> {
    let marathon = match &args.marathon {
        Some(url) => Marathon::parse(url)?,
        None => {
            let ctx = Context::load(global)?;
            Marathon::parse(&format!("http://127.0.0.1:{}/", ctx.spec.sim.marathon_port))?
        }
    };
    let json = global.output == OutputFormat::Json;
    match args.command {
        AppCommand::Deploy { file, force } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let outcome = marathon.deploy(&text, force).await?;
            print_outcome(
                json,
                &outcome,
                &format!(
                    "{} {}",
                    outcome["result"].as_str().unwrap_or_default(),
                    outcome["id"].as_str().unwrap_or_default()
                ),
            );
        }
        AppCommand::Scale { id, instances, force } => {
            let id = app_id(&id);
            let answer = marathon
                .request("PUT", &force.on(&format!("/v2/apps{id}")), Some(&json!({ "instances": instances })))
                .await?
                .expect_success(&format!("scaling {id}"))?;
            print_outcome(
                json,
                &answer,
                &format!(
                    "scaling {id} to {instances} (deployment {})",
                    answer["deploymentId"].as_str().unwrap_or("?")
                ),
            );
        }
        AppCommand::List => {
            let apps = marathon.list().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&apps)?);
            } else {
                println!("{:<24} {:>8} {:>8} {:>8}", "APP", "DESIRED", "RUNNING", "HEALTHY");
                for app in apps.as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {:>8} {:>8} {:>8}",
                        app["id"].as_str().unwrap_or("?"),
                        app["instances"].as_u64().unwrap_or(0),
                        app["tasksRunning"].as_u64().unwrap_or(0),
                        app["tasksHealthy"].as_u64().unwrap_or(0)
                    );
                }
            }
        }
        AppCommand::Rm { id, force } => {
            let id = app_id(&id);
            let answer = marathon
                .request("DELETE", &force.on(&format!("/v2/apps{id}")), None)
                .await?
                .expect_success(&format!("removing {id}"))?;
            print_outcome(json, &answer, &format!("removing {id}"));
        }
    }
    Ok(())
}

fn print_outcome(json: bool, value: &Value, text: &str) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        println!("{text}");
    }
}

/// `www` → `/www`.
fn app_id(id: &str) -> String {
    if id.starts_with('/') { id.to_string() } else { format!("/{id}") }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// The body of a 2xx answer, or an error quoting Marathon's message (409, 404, 422...).
    pub fn expect_success(self, what: &str) -> anyhow::Result<Value> {
        if (200..300).contains(&self.status) {
            return Ok(self.body);
        }
        let message = self
            .body
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.body.to_string());
        let details = self.body.get("details").map(|d| format!(" {d}")).unwrap_or_default();
        // Marathon's 409 names its own query parameter; the CLI's way to give it is --force.
        let hint = if self.status == 409 && self.body.get("deployments").is_some() {
            " (give --force to override it)"
        } else {
            ""
        };
        bail!("{what}: Marathon answered {}: {message}{details}{hint}", self.status)
    }
}

/// Marathon at one URL. Plain HTTP: Marathon sits behind the cluster's admin entry.
#[derive(Debug, Clone)]
pub struct Marathon {
    /// Where to connect; `*.localhost` names connect to 127.0.0.1 as browsers do.
    connect: String,
    /// The `Host` header (the admin entry routes by it).
    host: String,
    /// Path prefix of the URL, without trailing slash.
    prefix: String,
}

impl Marathon {
    /// Parses `http://host[:port][/prefix]`.
    pub fn parse(url: &str) -> anyhow::Result<Marathon> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| BadInput(format!("Marathon URL {url}: only http:// URLs are supported")))?;
        let (authority, prefix) = rest
            .split_once('/')
            .map(|(a, p)| (a, format!("/{p}")))
            .unwrap_or((rest, String::new()));
        let (name, port) = match authority.rsplit_once(':') {
            Some((name, port)) => (
                name,
                port.parse::<u16>()
                    .map_err(|_| BadInput(format!("Marathon URL {url}: bad port {port}")))?,
            ),
            None => (authority, 80),
        };
        let target = if name == "localhost" || name.ends_with(".localhost") {
            "127.0.0.1"
        } else {
            name
        };
        Ok(Marathon {
            connect: format!("{target}:{port}"),
            host: authority.to_string(),
            prefix: prefix.trim_end_matches('/').to_string(),
        })
    }

    /// Sends one request; no answer is an error naming the address.
    pub async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        let body = body.map(Value::to_string);
        let client = HttpClient::new(Duration::from_secs(5), Duration::from_secs(30));
        let answer = client
            .request(
                &self.connect,
                Some(&self.host),
                method,
                &format!("{}{path}", self.prefix),
                body.as_deref(),
            )
            .await
            .with_context(|| format!("asking Marathon at {} (is the cluster up?)", self.connect))?;
        Ok(Answer {
            status: answer.status,
            body: serde_json::from_str(&answer.body).unwrap_or(Value::String(answer.body)),
        })
    }

    /// Creates the app, or updates it when it exists. Returns `{id, result: created|updated}`.
    pub async fn deploy(&self, definition: &str, force: Force) -> anyhow::Result<Value> {
        let app = AppFile::parse(definition).map_err(BadInput)?;
        let value: Value = serde_json::from_str(definition).context("parsing the app definition")?;
        let id = app_id(&app.id);
        let existing = self.request("GET", &format!("/v2/apps{id}"), None).await?;
        if existing.status == 404 {
            self.request("POST", "/v2/apps", Some(&value))
                .await?
                .expect_success(&format!("creating {id}"))?;
            Ok(json!({ "id": id, "result": "created" }))
        } else {
            self.request("PUT", &force.on(&format!("/v2/apps{id}")), Some(&value))
                .await?
                .expect_success(&format!("updating {id}"))?;
            Ok(json!({ "id": id, "result": "updated" }))
        }
    }

    /// Creates the app unless an app of that id exists (left as it is). Returns `{id, result: created|exists}`.
    pub async fn deploy_if_missing(&self, definition: &str) -> anyhow::Result<Value> {
        let app = AppFile::parse(definition).map_err(BadInput)?;
        let id = app_id(&app.id);
        if self.request("GET", &format!("/v2/apps{id}"), None).await?.status == 200 {
            return Ok(json!({ "id": id, "result": "exists" }));
        }
        let value: Value = serde_json::from_str(definition).context("parsing the app definition")?;
        self.request("POST", "/v2/apps", Some(&value))
            .await?
            .expect_success(&format!("creating {id}"))?;
        Ok(json!({ "id": id, "result": "created" }))
    }

    /// Every app (`GET /v2/apps`).
    pub async fn list(&self) -> anyhow::Result<Value> {
        let answer = self.request("GET", "/v2/apps", None).await?.expect_success("listing apps")?;
        Ok(answer.get("apps").cloned().unwrap_or(Value::Array(vec![])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_names_connect_to_loopback_and_keep_their_host_header() {
        let m = Marathon::parse("http://marathon.admin.paas.localhost:8081/").unwrap();
        assert_eq!(
            (m.connect.as_str(), m.host.as_str(), m.prefix.as_str()),
            ("127.0.0.1:8081", "marathon.admin.paas.localhost:8081", "")
        );
        let m = Marathon::parse("http://10.0.0.5:8080/marathon").unwrap();
        assert_eq!((m.connect.as_str(), m.prefix.as_str()), ("10.0.0.5:8080", "/marathon"));
        assert!(Marathon::parse("https://x").is_err());
    }

    #[test]
    fn app_ids_get_their_leading_slash() {
        assert_eq!(app_id("www"), "/www");
        assert_eq!(app_id("/a/b"), "/a/b");
    }
}

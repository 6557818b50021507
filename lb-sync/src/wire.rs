//! Marathon's JSON as lb-sync reads it: a tolerant, read-only view of `/v2/apps?embed=apps.tasks`
//! and of the `/v2/events` payloads. Unknown fields are ignored and most fields are optional, so
//! older and newer Marathons (and the sim's) all decode.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The answer of `GET /v2/apps?embed=apps.tasks`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AppList {
    #[serde(default)]
    pub apps: Vec<App>,
}

/// One app definition with its embedded tasks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub health_checks: Vec<serde_json::Value>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tasks: Vec<Task>,
}

/// One task of an app, as embedded in the app list or listed by `/v2/tasks`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub app_id: Option<String>,
    #[serde(default)]
    pub host: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ports: Vec<i64>,
    /// `TASK_RUNNING`, `TASK_STAGING`, ...; Marathons before 1.4 leave it out.
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub health_check_results: Vec<HealthCheckResult>,
}

/// The outcome of one health check for one task.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResult {
    #[serde(default)]
    pub alive: bool,
}

/// The part of every `/v2/events` payload lb-sync looks at.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    #[serde(default)]
    pub event_type: Option<String>,
}

/// Marathon writes `null` for empty collections in some versions.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_recorded_app_list_and_task_lists() {
        let list: AppList = serde_json::from_str(include_str!("testdata/app_list.json")).unwrap();
        assert_eq!(list.apps.len(), 1);
        assert_eq!(list.apps[0].id, "/myapp");
        assert!(list.apps[0].tasks.is_empty());

        #[derive(Deserialize)]
        struct Tasks {
            tasks: Vec<Task>,
        }
        let tasks: Tasks = serde_json::from_str(include_str!("testdata/tasks.json")).unwrap();
        let running: Vec<(&str, &str, i64)> = tasks
            .tasks
            .iter()
            .filter(|t| t.state.as_deref() == Some("TASK_RUNNING"))
            .map(|t| (t.app_id.as_deref().unwrap(), t.host.as_str(), t.ports[0]))
            .collect();
        assert_eq!(
            running,
            [
                ("/frontend-foosball", "srv4.example.com", 31292),
                ("/tools/docker/registry", "srv2.example.com", 31721)
            ]
        );
        let staging: Tasks = serde_json::from_str(include_str!("testdata/app_tasks.json")).unwrap();
        assert_eq!(staging.tasks[0].state.as_deref(), Some("TASK_STAGING"));
    }

    #[test]
    fn tolerates_nulls_and_missing_fields() {
        let app: App =
            serde_json::from_str(r#"{"id":"/a","labels":null,"healthChecks":null,"tasks":[{"host":"h","ports":null}],"extra":1}"#).unwrap();
        assert!(app.labels.is_empty() && app.health_checks.is_empty());
        assert!(app.tasks[0].ports.is_empty() && app.tasks[0].state.is_none());
    }
}

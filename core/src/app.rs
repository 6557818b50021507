//! Marathon apps as the spec names them: ids and the few fields `paas` itself reads.
//!
//! The full Marathon wire format belongs to the Marathon program and its clients; here an app
//! file is checked only as far as `paas` needs before anything is deployed.

use serde::Deserialize;

/// A Marathon app id such as `/www` or `/shop/cart`: absolute, path segments of lowercase
/// letters, digits and inner hyphens (dots allowed inside a segment, as Marathon allows).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(String);

/// Why a string is not a Marathon app id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIdError(pub String);

impl AppId {
    /// Parses an id, making a relative one (`www`) absolute (`/www`) as Marathon does for
    /// top-level apps. Fails on empty segments and characters Marathon refuses.
    pub fn parse(id: &str) -> Result<AppId, AppIdError> {
        let trimmed = id.strip_prefix('/').unwrap_or(id);
        if trimmed.is_empty() {
            return Err(AppIdError("the id is empty".into()));
        }
        for segment in trimmed.split('/') {
            let ok = !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && segment.starts_with(|c: char| c.is_ascii_alphanumeric())
                && segment.ends_with(|c: char| c.is_ascii_alphanumeric())
                && segment != "."
                && segment != "..";
            if !ok {
                return Err(AppIdError(format!("the segment `{segment}` is not allowed in a Marathon id")));
            }
        }
        Ok(AppId(format!("/{trimmed}")))
    }

    /// The id as Marathon prints it, with the leading slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The virtual host an lb serves the app at: `/a` → `a.<domain>`, `/group/app` →
    /// `app.group.<domain>` (the path reversed, like a DNS name).
    pub fn vhost(&self, domain: &str) -> String {
        let mut labels: Vec<&str> = self.0[1..].split('/').collect();
        labels.reverse();
        format!("{}.{domain}", labels.join("."))
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parts of a Marathon app definition `paas` checks before deploying it.
#[derive(Debug, Clone, Deserialize)]
pub struct AppFile {
    pub id: String,
    #[serde(default)]
    pub instances: Option<u32>,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub container: Option<serde_json::Value>,
}

impl AppFile {
    /// Parses a Marathon app definition; fails when the JSON is malformed, not an object, has no
    /// string `id`, or has neither `cmd`, `args` nor `container` (nothing to run).
    pub fn parse(text: &str) -> Result<AppFile, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))?;
        if !value.is_object() {
            return Err("expected a JSON object (one app), not a list or a value".into());
        }
        let app: AppFile = serde_json::from_value(value).map_err(|e| e.to_string())?;
        if app.cmd.is_none() && app.args.is_none() && app.container.is_none() {
            return Err("it runs nothing: give it a `cmd`, `args` or `container`".into());
        }
        Ok(app)
    }
}

/// The app `paas sim up` deploys when the spec lists none: a tiny web server per task that
/// answers with its own task id, so a client can see which task served it.
pub const WWW_APP_JSON: &str = include_str!("../apps/www.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_marathon_rules() {
        assert_eq!(AppId::parse("www").unwrap().as_str(), "/www");
        assert_eq!(AppId::parse("/shop/cart-v2").unwrap().as_str(), "/shop/cart-v2");
        for bad in ["", "/", "/Www", "/a//b", "/-a", "/a-", "/a b", "/a_b"] {
            assert!(AppId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn vhost_reverses_groups_and_keeps_hyphens() {
        let domain = "paas.localhost";
        assert_eq!(AppId::parse("/www").unwrap().vhost(domain), "www.paas.localhost");
        assert_eq!(AppId::parse("/shop/cart-v2").unwrap().vhost(domain), "cart-v2.shop.paas.localhost");
    }

    #[test]
    fn builtin_www_app_is_valid() {
        let app = AppFile::parse(WWW_APP_JSON).unwrap();
        assert_eq!(app.id, "/www");
        assert_eq!(app.instances, Some(3));
    }

    #[test]
    fn app_files_that_run_nothing_or_are_lists_are_refused() {
        assert!(AppFile::parse(r#"{"id":"/a"}"#).unwrap_err().contains("runs nothing"));
        assert!(AppFile::parse(r#"[{"id":"/a","cmd":"x"}]"#).unwrap_err().contains("object"));
        assert!(AppFile::parse(r#"{"id":"/a","cmd":"#).unwrap_err().contains("line 1"));
    }
}

//! Writing a change back into the user's spec file, keeping its comments and layout.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, value};

use super::{ClusterSpec, SpecError};

impl ClusterSpec {
    /// `text` (a spec file's contents, from `origin`) with `[nodes] <role> = count`: the key
    /// is replaced where it is (an inline `nodes = { ... }` table included) or added to the
    /// `[nodes]` table, which is appended when missing. Comments, order and spacing of
    /// everything else are kept.
    ///
    /// Fails with [`SpecError::Syntax`] when `text` is not a spec, or when `nodes` is not a
    /// table, or when the result would mean anything but the old spec with the new count.
    pub fn with_node_count(text: &str, origin: &Path, role: &str, count: u32) -> Result<String, SpecError> {
        // Parse as a spec first: the edit must not turn a broken file into another broken one.
        let mut expected = ClusterSpec::from_toml(text, origin)?;
        let mut document: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| SpecError::Syntax {
            path: origin.to_path_buf(),
            line: 1,
            column: 1,
            key: None,
            message: e.message().to_string(),
        })?;
        if !document.contains_key("nodes") {
            document.insert("nodes", Item::Table(Table::new()));
        }
        let nodes = document["nodes"].as_table_like_mut().ok_or_else(|| SpecError::Syntax {
            path: origin.to_path_buf(),
            line: 1,
            column: 1,
            key: Some("nodes".into()),
            message: "expected a table of node counts".into(),
        })?;
        match nodes.get_mut(role) {
            // Keep the key's own decoration (a trailing `# comment`) and replace only the value.
            Some(Item::Value(old)) => {
                let decor = old.decor().clone();
                *old = toml_edit::Value::from(i64::from(count));
                *old.decor_mut() = decor;
            }
            _ => {
                nodes.insert(role, value(i64::from(count)));
            }
        }
        let edited = document.to_string();
        match role {
            "masters" => expected.nodes.masters = count,
            "slaves" => expected.nodes.slaves = count,
            "lbs" => expected.nodes.lbs = count,
            "adminlb" => expected.nodes.adminlb = count,
            _ => {
                return Err(SpecError::Syntax {
                    path: origin.to_path_buf(),
                    line: 1,
                    column: 1,
                    key: Some(format!("nodes.{role}")),
                    message: "not a role with a count".into(),
                });
            }
        }
        // The rewritten file must mean exactly the old spec with the new count.
        let reparsed = ClusterSpec::from_toml(&edited, origin)?;
        if reparsed != expected {
            return Err(SpecError::Syntax {
                path: origin.to_path_buf(),
                line: 1,
                column: 1,
                key: Some(format!("nodes.{role}")),
                message: "rewriting the count changed other settings; edit the file by hand".into(),
            });
        }
        Ok(edited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, role: &str, count: u32) -> String {
        ClusterSpec::with_node_count(text, Path::new("paas.toml"), role, count).unwrap()
    }

    #[test]
    fn a_count_is_replaced_in_place_keeping_comments_and_layout() {
        let text = "# my cluster\nname = \"c\"\n\n[nodes]\nmasters = 3   # odd\nslaves  = 5   # agents\nlbs = 2\n\n[agent]\ncpus = 4.0\n";
        let edited = edit(text, "slaves", 8);
        assert_eq!(
            edited,
            "# my cluster\nname = \"c\"\n\n[nodes]\nmasters = 3   # odd\nslaves  = 8   # agents\nlbs = 2\n\n[agent]\ncpus = 4.0\n"
        );
    }

    #[test]
    fn a_missing_key_or_table_is_added_and_the_rest_kept() {
        let text = "# mine\nname = \"c\"\n[nodes]\nmasters = 3\n";
        let edited = edit(text, "lbs", 3);
        assert!(edited.starts_with("# mine\nname = \"c\"\n[nodes]\nmasters = 3\n"), "{edited}");
        assert_eq!(ClusterSpec::from_toml(&edited, Path::new("x")).unwrap().nodes.lbs, 3);

        let edited = edit("# only a name\nname = \"c\"\n", "slaves", 7);
        assert!(edited.starts_with("# only a name\nname = \"c\"\n"), "{edited}");
        let spec = ClusterSpec::from_toml(&edited, Path::new("x")).unwrap();
        assert_eq!((spec.name.as_str(), spec.nodes.slaves), ("c", 7));
    }

    #[test]
    fn an_inline_nodes_table_is_edited_where_it_is() {
        let edited = edit("nodes = { slaves = 2, lbs = 2 }\n", "slaves", 4);
        assert_eq!(edited, "nodes = { slaves = 4, lbs = 2 }\n");
    }

    #[test]
    fn a_broken_file_is_refused_not_rewritten() {
        let err = ClusterSpec::with_node_count("[nodes]\nslaves = -1\n", Path::new("p.toml"), "slaves", 3).unwrap_err();
        assert_eq!(err.key(), Some("nodes.slaves"));
        let err = ClusterSpec::with_node_count("nodes = 3\n", Path::new("p.toml"), "slaves", 3).unwrap_err();
        assert!(err.to_string().contains("nodes"), "{err}");
    }
}

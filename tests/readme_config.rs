//! The README's configuration table says what `Config::default()` is:
//! each default in it, read as TOML, leaves the default configuration as
//! it is, and every key the loader knows is in the table.

use ndf::Config;

/// The rows of the README's configuration table: (key, default as TOML).
fn rows() -> Vec<(String, String)> {
    let readme = include_str!("../README.md");
    let table = readme
        .split("<!-- config-table")
        .nth(1)
        .expect("the README has its configuration table");
    table
        .lines()
        .skip_while(|l| !l.starts_with("| key"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].trim_matches('`').to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_default_in_the_readme_is_the_default() {
    let rows = rows();
    assert!(rows.len() >= 20, "{rows:?}");
    for (key, default) in &rows {
        if default == "none" {
            continue;
        }
        let config = Config::from_toml_str(&format!("{key} = {default}"))
            .unwrap_or_else(|e| panic!("`{key} = {default}` from the README: {e}"));
        assert_eq!(
            config,
            Config::default(),
            "the README's default of `{key}`, {default}, is not the default"
        );
    }
    assert_eq!(Config::default().latency_alert, None);
}

#[test]
fn every_key_the_loader_knows_is_in_the_readme() {
    let keys: Vec<String> = rows().into_iter().map(|(k, _)| k).collect();
    // The loader's own list, as its error for an unknown key gives it.
    let err = Config::from_toml_str("no_such_key = 1").unwrap_err();
    let known = err
        .reason
        .split("expected one of: ")
        .nth(1)
        .expect("the error lists the keys");
    for key in known.split(", ") {
        assert!(
            keys.iter().any(|k| k == key),
            "`{key}` is missing from the README's table"
        );
    }
}

#[test]
fn the_effective_configuration_serializes_with_the_readmes_keys() {
    let value = serde_json::to_value(Config::default()).unwrap();
    for (key, _) in rows() {
        assert!(
            value.get(&key).is_some() || key == "latency_alert" || key == "retry_budget",
            "{key} missing: {value}"
        );
    }
    assert_eq!(value["step_timeout"], "2m");
    assert_eq!(value["prior"], serde_json::json!([1.0, 1.0]));
    assert_eq!(value["domains"]["security"]["step_timeout"], "2m");
}

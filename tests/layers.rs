//! The runtime's layers stay one-way: every `crate::…` path in
//! `ndf-runtime/src` (in `use` items and inline) names a module of a lower
//! layer, or the file's own module. The layers, bottom up:
//!
//! 0. the model and the leaves: plain data every layer shares;
//! 1. `config`;
//! 2. `gating`, `store` (neither imports the other);
//! 3. `learning`;
//! 4. `telemetry`;
//! 5. `exec`, the run path;
//! 6. `runtime`, which wires the rest together;
//! 7. the crate root and `macro_support`.
//!
//! And no source file grows past a size one can read in a sitting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const LAYERS: &[(&str, u32)] = &[
    ("model", 0),
    ("deadline", 0),
    ("error", 0),
    ("context", 0),
    ("security", 0),
    ("order", 0),
    ("policy", 0),
    ("stripes", 0),
    ("config", 1),
    ("gating", 2),
    ("store", 2),
    ("learning", 3),
    ("telemetry", 4),
    ("exec", 5),
    ("runtime", 6),
    ("macro_support", 7),
];

/// Lines a source file may have.
const MAX_LINES: usize = 650;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ndf-runtime/src")
}

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`None` for `lib.rs`).
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib").then(|| name.to_owned())
}

/// The code of a line, without its comment.
fn code(line: &str) -> &str {
    line.split("//").next().unwrap_or("")
}

/// The modules the crate root re-exports each name from, read from
/// `lib.rs`'s `pub use module::{…}` items: `crate::Error` is `error`'s.
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut names = BTreeMap::new();
    let mut rest = lib.as_str();
    while let Some(start) = rest.find("pub use ") {
        let item = &rest[start + "pub use ".len()..];
        let end = item.find(';').unwrap();
        let (module, list) = item[..end].split_once("::").unwrap_or(("", ""));
        for name in list
            .trim_matches(|c: char| c == '{' || c == '}' || c.is_whitespace())
            .split(',')
        {
            let name = name.trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.trim().to_owned());
            }
        }
        rest = &item[end..];
    }
    names
}

/// Every module `code` names through `crate::` (and, in a module's root
/// file, through `super::`), braces of a `use` group included, with the
/// byte offset where it does.
fn named_modules_at(
    code: &str,
    root_file: bool,
    reexports: &BTreeMap<String, String>,
) -> Vec<(usize, String)> {
    let line = code;
    let mut out = Vec::new();
    let mut prefixes = vec!["crate::"];
    if root_file {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (i, _) in line.match_indices(prefix) {
            let before = line[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let after = &line[i + prefix.len()..];
            let group = after
                .strip_prefix('{')
                .map(|g| g.split('}').next().unwrap_or(""));
            let firsts: Vec<&str> = match group {
                Some(g) => g.split(',').map(str::trim).collect(),
                None => vec![after],
            };
            for first in firsts {
                let name: String = first
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() || name == "self" {
                    continue;
                }
                out.push((i, reexports.get(&name).cloned().unwrap_or(name)));
            }
        }
    }
    out
}

fn named_modules(line: &str, root_file: bool, reexports: &BTreeMap<String, String>) -> Vec<String> {
    named_modules_at(line, root_file, reexports)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

#[test]
fn no_file_of_the_runtime_imports_a_layer_above_its_own() {
    let reexports = reexports();
    let mut all = Vec::new();
    files(&src(), &mut all);
    all.sort();
    assert!(all.len() > 20, "the runtime's sources are read: {all:?}");
    let mut violations = Vec::new();
    let mut checked = 0;
    for file in &all {
        let Some(module) = module_of(file) else {
            continue;
        };
        let own = rank(&module).unwrap_or_else(|| {
            panic!("`{module}` has no layer: add it to LAYERS in tests/layers.rs")
        });
        let relative = file.strip_prefix(src()).unwrap().display().to_string();
        let root_file = !relative.contains('/') || relative.ends_with("/mod.rs");
        let text = std::fs::read_to_string(file).unwrap();
        let code: String = text.lines().flat_map(|l| [code(l), "\n"]).collect();
        let lines: Vec<&str> = text.lines().collect();
        for (at, target) in named_modules_at(&code, root_file, &reexports) {
            let number = code[..at].matches('\n').count();
            let line = lines[number];
            {
                checked += 1;
                if target == module {
                    continue;
                }
                let Some(theirs) = rank(&target) else {
                    violations.push(format!(
                        "{relative}:{}: `{target}` is not a module with a layer",
                        number + 1
                    ));
                    continue;
                };
                let allowed = theirs < own || (own == 0 && theirs == 0);
                if !allowed {
                    violations.push(format!(
                        "{relative}:{}: `{module}` (layer {own}) imports `{target}` (layer {theirs}): {}",
                        number + 1,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "imports were found: {checked}");
    assert!(
        violations.is_empty(),
        "imports that run up or across the layers:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_source_file_of_the_runtime_or_the_macros_is_overlong() {
    let mut all = Vec::new();
    files(&src(), &mut all);
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("ndf-macros/src"),
        &mut all,
    );
    let long: Vec<String> = all
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} has {lines} lines", file.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these by concern (at most {MAX_LINES} lines): {long:?}"
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let reexports = reexports();
    assert_eq!(
        named_modules("use crate::runtime::Inner;", false, &reexports),
        ["runtime"]
    );
    assert_eq!(
        named_modules("    state: crate::BreakerState,", false, &reexports),
        ["model"],
        "a root re-export counts as its module"
    );
    assert_eq!(
        named_modules(
            "use crate::{\n    config::Config,\n    exec::Cx,\n};",
            false,
            &reexports
        ),
        ["config", "exec"],
        "a group over several lines"
    );
    assert_eq!(
        named_modules("use super::Clock;", true, &reexports),
        ["Clock"],
        "in a module's root file `super` is the crate"
    );
    assert!(named_modules("use super::Clock;", false, &reexports).is_empty());
}

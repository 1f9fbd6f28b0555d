//! Tidy checks of what the server promises about its own code and of the documents that
//! describe the repository, as rust-analyzer keeps them (issue 14): a broken promise fails a
//! test instead of waiting for a review to notice.
//!
//! - Only `status.rs` builds a `tonic::Status` or writes a server reason's string
//!   (ARCHITECTURE.md, Invariants): the rest of the server names a `ServerReason`.
//! - No file points at a design file outside the repository, which a person who clones the
//!   project does not have: the rules are in docs/RULES.md.
//! - ARCHITECTURE.md's code map names every crate, and every source file or folder it names
//!   exists.
//!
//! Text checks, on the files as they are in the working tree; none of them starts the server.

use std::path::{Path, PathBuf};

use ledger_server::status::ServerReason;

fn workspace() -> PathBuf {
    ledger_testkit::workspace_root()
}

/// Folders no check reads: build output, version control, and what tools of other languages
/// make in a checkout.
fn is_skipped(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "target" | "node_modules" | "__pycache__" | "build" | "dist" | "venv"
        )
        || name.ends_with(".egg-info")
}

/// Every file under `dir` (skipped folders aside), as paths relative to the workspace with `/`.
fn files_under(dir: &Path) -> Vec<String> {
    let root = workspace();
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("{} is readable: {error}", folder.display()));
        for entry in entries {
            let path = entry.expect("a folder entry").path();
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            if path.is_dir() {
                if !is_skipped(&name) {
                    folders.push(path);
                }
            } else if let Ok(relative) = path.strip_prefix(&root) {
                files.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    files.sort();
    files
}

fn read(relative: &str) -> String {
    let path = workspace().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{} is readable: {error}", path.display()))
}

/// The part of a source file before its unit tests (`#[cfg(test)]` at the start of a line):
/// tests may spell out what they expect.
fn production_part(text: &str) -> &str {
    match text.find("\n#[cfg(test)]") {
        Some(end) => &text[..end],
        None => text,
    }
}

#[test]
fn only_status_rs_builds_a_status_or_spells_a_server_reason() {
    let sources: Vec<String> = files_under(&workspace().join("crates/ledger-server/src"))
        .into_iter()
        .filter(|file| file.ends_with(".rs") && !file.ends_with("/status.rs"))
        .collect();
    assert!(
        sources.len() > 10,
        "the walk found the sources: {sources:?}"
    );
    let builders = [
        "Status::new(",
        "Status::with_details(",
        "Status::with_error_details(",
        "Status::with_details_and_metadata(",
    ];
    let mut failures = Vec::new();
    for file in &sources {
        let text = read(file);
        let code = production_part(&text);
        for reason in ServerReason::ALL {
            let literal = format!("\"{}\"", reason.as_str());
            // `UNAUTHENTICATED` and `PERMISSION_DENIED` are also gRPC codes' names, which
            // the metrics label calls with (`Code::Unauthenticated => "UNAUTHENTICATED"`).
            let spelled = code
                .lines()
                .any(|line| line.contains(&literal) && !line.contains("Code::"));
            if spelled {
                failures.push(format!(
                    "{file} spells {literal}: name ServerReason::{reason:?}"
                ));
            }
        }
        for builder in builders {
            if code.contains(builder) {
                failures.push(format!("{file} calls {builder}: build it in status.rs"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn no_file_points_at_a_design_file_outside_the_repository() {
    // Spelled in two parts, so that this file does not find itself.
    let pointers = [format!("{}/shared", ".."), format!("{}.md", "DESIGN")];
    let files = files_under(&workspace());
    assert!(files.iter().any(|file| file == "README.md"), "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        // Text files only: a binary or non-UTF-8 file cannot hold a pointer a reader follows.
        let Ok(text) = std::fs::read_to_string(workspace().join(file)) else {
            continue;
        };
        for pointer in &pointers {
            for (number, line) in text.lines().enumerate() {
                if line.contains(pointer.as_str()) {
                    failures.push(format!("{file}:{}: {line}", number + 1));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "these lines point outside the repository; point at docs/RULES.md instead:\n{}",
        failures.join("\n")
    );
}

/// The backquoted words of `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn the_code_map_names_every_crate_and_every_file_it_names_exists() {
    let architecture = read("ARCHITECTURE.md");
    let files = files_under(&workspace());
    let mut failures = Vec::new();

    let crates = std::fs::read_dir(workspace().join("crates")).expect("crates/ is readable");
    for entry in crates {
        let path = entry.expect("an entry").path();
        if path.join("Cargo.toml").exists() {
            let name = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let heading = format!("**`crates/{name}`**");
            if !architecture.contains(&heading) {
                failures.push(format!("no paragraph {heading} in the code map"));
            }
        }
    }

    for word in quoted(&architecture) {
        let is_path = !word.contains(' ')
            && (word.ends_with(".rs") || (word.ends_with('/') && word.len() > 1))
            && word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c));
        if !is_path {
            continue;
        }
        let word = word.trim_start_matches("./");
        // The ledger's data folder at run time (`data/projections/`), not a folder of the
        // repository.
        if word.starts_with("data/") {
            continue;
        }
        let exists = files.iter().any(|file| {
            if word.ends_with('/') {
                file.starts_with(word) || file.contains(&format!("/{word}"))
            } else {
                file == word || file.ends_with(&format!("/{word}"))
            }
        });
        if !exists {
            failures.push(format!(
                "`{word}` is named but no such file or folder exists"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "ARCHITECTURE.md:\n{}",
        failures.join("\n")
    );
}

/// The packages `package` depends on, directly or not, through normal dependencies (not
/// dev- or build-dependencies), from `cargo metadata`'s resolved graph.
fn normal_dependencies_of(package: &str) -> std::collections::BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata answers JSON");
    let name_of = |id: &str| -> String {
        metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|candidate| candidate["id"] == id)
            .and_then(|candidate| candidate["name"].as_str())
            .unwrap_or(id)
            .to_owned()
    };
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .expect("a resolved graph");
    let node_of = |id: &str| nodes.iter().find(|node| node["id"] == id);
    let root = nodes
        .iter()
        .find(|node| node["id"].as_str().is_some_and(|id| name_of(id) == package))
        .unwrap_or_else(|| panic!("{package} is in the graph"));
    let mut seen = std::collections::BTreeSet::new();
    let mut to_visit = vec![root];
    while let Some(node) = to_visit.pop() {
        for dependency in node["deps"].as_array().into_iter().flatten() {
            let normal = dependency["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|kind| kind["kind"].is_null());
            let Some(id) = dependency["pkg"].as_str() else {
                continue;
            };
            if normal && seen.insert(name_of(id)) {
                if let Some(next) = node_of(id) {
                    to_visit.push(next);
                }
            }
        }
    }
    seen
}

/// The domain tidy test (`ledger-domain/tests/tidy.rs`) reads each manifest's own
/// dependencies; this one follows the resolved graph, so a crate that is allowed in (say
/// `ledger-json`) cannot bring tonic or the proto crate in behind it.
#[test]
fn the_rules_and_the_read_models_reach_no_io_network_or_wire_crate_even_indirectly() {
    const FORBIDDEN: [&str; 9] = [
        "sled",
        "tonic",
        "tokio",
        "prost",
        "ledger-proto",
        "ledger-json",
        "ledger-codec",
        "ledger-store",
        "ledger-engine",
    ];
    for package in ["ledger-domain", "ledger-projections"] {
        let reached = normal_dependencies_of(package);
        assert!(!reached.is_empty(), "{package} has dependencies to check");
        let forbidden: Vec<&String> = reached
            .iter()
            .filter(|name| FORBIDDEN.contains(&name.as_str()))
            .collect();
        assert!(
            forbidden.is_empty(),
            "{package} reaches {forbidden:?} (ARCHITECTURE.md, Invariants)"
        );
    }
}

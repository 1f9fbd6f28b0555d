//! Tidy checks of the workspace, as rust-analyzer keeps them: the layering ARCHITECTURE.md
//! promises, and a `//!` doc at the top of every source file, fail a test when broken.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The dependencies a crate's manifest names under `[dependencies]`.
fn dependencies_of(krate: &str) -> Vec<String> {
    let path = workspace().join("crates").join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{} is readable: {error}", path.display()));
    let manifest: toml::Table = text
        .parse()
        .unwrap_or_else(|error| panic!("{} parses: {error}", path.display()));
    manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .map(|table| table.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn the_rules_and_the_read_models_depend_on_no_io_network_or_wire_crate() {
    const FORBIDDEN: [&str; 8] = [
        "sled",
        "tonic",
        "tokio",
        "prost",
        "ledger-proto",
        "ledger-store",
        "ledger-engine",
        "ledger-codec",
    ];
    for krate in ["ledger-domain", "ledger-projections"] {
        let dependencies = dependencies_of(krate);
        assert!(
            !dependencies.is_empty(),
            "{krate} has dependencies to check"
        );
        for dependency in &dependencies {
            assert!(
                !FORBIDDEN.iter().any(|forbidden| dependency == forbidden
                    || dependency.starts_with(&format!("{forbidden}-"))),
                "{krate} must not depend on {dependency} (ARCHITECTURE.md, Invariants)"
            );
        }
    }
}

/// Issue 14: the clients of the API know the proto crate and the JSON of events, never the
/// domain's rules; the server's binary serves, and the tools that drive it are their own crate.
#[test]
fn the_command_line_client_knows_the_api_not_the_domain_and_the_server_holds_no_tools() {
    for krate in ["voucherctl", "ledger-json"] {
        let dependencies = dependencies_of(krate);
        assert!(
            dependencies.iter().any(|name| name == "ledger-proto"),
            "{krate}"
        );
        for forbidden in [
            "ledger-domain",
            "ledger-codec",
            "ledger-engine",
            "ledger-store",
        ] {
            assert!(
                !dependencies.iter().any(|name| name == forbidden),
                "{krate} must not depend on {forbidden} (ARCHITECTURE.md, code map)"
            );
        }
    }
    // `bench` was the one user of latency histograms: with it in ledger-sim, the server has none.
    let server = dependencies_of("ledger-server");
    assert!(server.iter().any(|name| name == "ledger-engine"));
    assert!(!server.iter().any(|name| name == "hdrhistogram"));
    let sim_sources = workspace().join("crates/ledger-server/src/simulate");
    assert!(!sim_sources.exists(), "simulate lives in crates/ledger-sim");
}

#[test]
fn every_source_file_says_what_it_is_in_its_first_line() {
    let mut files = Vec::new();
    let crates = workspace().join("crates");
    for entry in std::fs::read_dir(&crates).expect("crates/ is readable") {
        let source = entry.expect("an entry").path().join("src");
        collect_rust_files(&source, &mut files);
    }
    assert!(
        files.len() > 20,
        "the walk found the sources: {}",
        files.len()
    );
    let undocumented: Vec<_> = files
        .iter()
        .filter(|file| {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            !text.starts_with("//!")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files do not start with a `//!` doc saying what they are: {undocumented:#?}"
    );
}

fn collect_rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_rust_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

//! What the voucherctl tests share: the real `voucher-ledger` server on 127.0.0.1:0 with the
//! demo configuration and a fresh folder, and voucherctl run against it as a user would.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub use ledger_testkit::tokens::{ADMINISTRATION, AUDITOR, OPERATOR, PROVIDER_AG_0012};
use ledger_testkit::Process;

/// A valid NISS (born 1985-07-30); it must never come back in any output.
pub const NISS: &str = "85073003328";

pub use ledger_testkit::workspace_root;

/// The `voucher-ledger` binary next to `voucherctl` in the target folder, built first if it is
/// not there yet (cargo builds only this package's binaries for its tests).
pub fn server_binary() -> PathBuf {
    let voucherctl = PathBuf::from(env!("CARGO_BIN_EXE_voucherctl"));
    let profile_dir = voucherctl
        .parent()
        .expect("voucherctl lives in a profile folder");
    let server = profile_dir.join(format!("voucher-ledger{}", std::env::consts::EXE_SUFFIX));
    if server.exists() {
        return server;
    }
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "-p", "ledger-server", "--bin", "voucher-ledger"])
        .current_dir(workspace_root());
    if let Some(target_dir) = profile_dir.parent() {
        build.env("CARGO_TARGET_DIR", target_dir);
    }
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    let status = build.status().expect("cargo can be run");
    assert!(status.success(), "building voucher-ledger failed: {status}");
    assert!(server.exists(), "{} was not built", server.display());
    server
}

/// A running server, killed on drop if the test did not stop it.
pub struct Server {
    // Declared before `data_dir`: the process is killed before its folder is removed.
    process: Process,
    pub url: String,
    data_dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let data_dir = tempfile::tempdir().expect("temporary folder");
        let mut command = ledger_testkit::command(
            server_binary(),
            &["serve", "--demo", "--listen", "127.0.0.1:0", "--data"],
        );
        command
            .arg(data_dir.path().join("data"))
            .current_dir(data_dir.path());
        let process = Process::spawn(&mut command, &data_dir.path().join("server.log"))
            .unwrap_or_else(|failure| {
                panic!(
                    "voucher-ledger printed no address (exit: {:?}); its log:\n{}",
                    failure.status, failure.stderr
                )
            });
        Server {
            url: process.uri(),
            process,
            data_dir,
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    /// SIGTERM, then wait for the server to finish its queue and exit 0.
    pub fn stop(self) {
        self.process.stop_blocking();
    }
}

/// Runs voucherctl against `server` with `token`.
pub fn voucherctl(server: &Server, token: &str, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voucherctl"))
        .args(["--server", &server.url, "--token", token])
        .args(arguments)
        .env_remove("VOUCHERCTL_SERVER")
        .env_remove("VOUCHERCTL_TOKEN")
        .output()
        .expect("voucherctl runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs voucherctl, expects success, and returns its stdout.
pub fn succeed(server: &Server, token: &str, arguments: &[&str]) -> String {
    let output = voucherctl(server, token, arguments);
    assert!(
        output.status.success(),
        "voucherctl {arguments:?} failed with {}:\nstdout: {}\nstderr: {}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

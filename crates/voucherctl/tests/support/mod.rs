//! What the voucherctl tests share: the real `voucher-ledger` server on 127.0.0.1:0 with the
//! demo configuration and a fresh folder, and voucherctl run against it as a user would.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to open its store and print its address. It takes well under a
/// second; the margin is for a loaded two-core machine.
pub const SERVER_START_TIMEOUT_MS: u64 = 60_000;

/// How long the server may take to finish and flush after SIGTERM.
pub const SERVER_STOP_TIMEOUT_MS: u64 = 30_000;

pub const ADMINISTRATION: &str = "demo-administration-token";
pub const OPERATOR: &str = "demo-operator-token";
pub const PROVIDER_AG_0012: &str = "demo-provider-AG-0012-token";
pub const AUDITOR: &str = "demo-auditor-token";

/// A valid NISS (born 1985-07-30); it must never come back in any output.
pub const NISS: &str = "85073003328";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

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
    child: Child,
    pub url: String,
    data_dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let data_dir = tempfile::tempdir().expect("temporary folder");
        let log = std::fs::File::create(data_dir.path().join("server.log")).expect("log file");
        let mut child = Command::new(server_binary())
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data"])
            .arg(data_dir.path().join("data"))
            .env(
                "VOUCHER_LEDGER__POLICY_FILE",
                workspace_root().join("config/policy.toml"),
            )
            .current_dir(data_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("voucher-ledger starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (address_sender, address_receiver) = mpsc::channel();
        // Reads the address line, then keeps draining stdout until the server exits.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(address) = line.strip_prefix("voucher-ledger listening on ") {
                    let _ = address_sender.send(address.trim().to_owned());
                }
            }
        });
        let address = address_receiver.recv_timeout(Duration::from_millis(SERVER_START_TIMEOUT_MS));
        let mut server = Server {
            child,
            url: String::new(),
            data_dir,
        };
        match address {
            Ok(address) => server.url = format!("http://{address}"),
            Err(_) => panic!(
                "voucher-ledger printed no address; its log:\n{}",
                server.log()
            ),
        }
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait for the server to finish its queue and exit.
    pub fn stop(mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if !terminated {
            let _ = self.child.kill();
        }
        let deadline = Instant::now() + Duration::from_millis(SERVER_STOP_TIMEOUT_MS);
        loop {
            match self.child.try_wait().expect("server status") {
                Some(status) => {
                    assert!(
                        status.success() || !terminated,
                        "voucher-ledger stopped with {status}; its log:\n{}",
                        self.log()
                    );
                    return;
                }
                None if Instant::now() > deadline => {
                    panic!("voucher-ledger did not stop after SIGTERM")
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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

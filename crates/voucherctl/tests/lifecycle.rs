//! End to end: the real `voucher-ledger` server, with the demo configuration on 127.0.0.1:0 and
//! a fresh data folder, driven through the real `voucherctl` binary as a user would drive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to open its store and print its address. It takes well under a
/// second; the margin is for a loaded two-core machine.
const SERVER_START_TIMEOUT_MS: u64 = 60_000;

/// How long the server may take to finish and flush after SIGTERM.
const SERVER_STOP_TIMEOUT_MS: u64 = 30_000;

const ADMINISTRATION: &str = "demo-administration-token";
const OPERATOR: &str = "demo-operator-token";
const PROVIDER_AG_0012: &str = "demo-provider-AG-0012-token";
const AUDITOR: &str = "demo-auditor-token";

/// A valid NISS (born 1985-07-30); it must never come back in any output.
const NISS: &str = "85073003328";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `voucher-ledger` binary next to `voucherctl` in the target folder, built first if it is
/// not there yet (cargo builds only this package's binaries for its tests).
fn server_binary() -> PathBuf {
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
struct Server {
    child: Child,
    url: String,
    data_dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
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

    fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait for the server to finish its queue and exit.
    fn stop(mut self) {
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
fn voucherctl(server: &Server, token: &str, arguments: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voucherctl"))
        .args(["--server", &server.url, "--token", token])
        .args(arguments)
        .env_remove("VOUCHERCTL_SERVER")
        .env_remove("VOUCHERCTL_TOKEN")
        .output()
        .expect("voucherctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs voucherctl, expects success, and returns its stdout.
fn succeed(server: &Server, token: &str, arguments: &[&str]) -> String {
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

#[test]
fn lifecycle_through_the_real_binaries() {
    let server = Server::start();

    let opened = succeed(
        &server,
        ADMINISTRATION,
        &[
            "budget",
            "open",
            "--year",
            "2025",
            "--allocated",
            "7657000.00",
        ],
    );
    assert!(
        opened.contains("opened budget 2025 with EUR 7657000.00 at position 1"),
        "{opened}"
    );
    assert!(opened.contains("replayed no"), "{opened}");

    succeed(
        &server,
        ADMINISTRATION,
        &[
            "provider",
            "approve",
            "--provider",
            "AG-0012",
            "--name",
            "Formations Meuse",
            "--from",
            "2025-01-01",
        ],
    );
    succeed(
        &server,
        ADMINISTRATION,
        &[
            "module",
            "approve",
            "--module",
            "M-1",
            "--provider",
            "AG-0012",
            "--title",
            "AI for small businesses",
            "--hours-max",
            "40",
            "--voucher-types",
            "general,languages",
            "--themes",
            "ai,digital",
            "--from",
            "2025-01-01",
        ],
    );
    let registered = succeed(
        &server,
        OPERATOR,
        &[
            "register",
            "--enterprise",
            "0403.019.261",
            "--year",
            "2025",
            "--name",
            "Meuse Numérique SRL",
            "--legal-form",
            "commercial-company",
            "--region",
            "wallonia-french-speaking",
            "--fte",
            "10",
            "--turnover",
            "1000000",
            "--balance-sheet",
            "500000",
            "--nace",
            "62.01",
            "--registered-on",
            "2025-01-05",
        ],
    );
    assert!(
        registered.contains("registered 0403019261 (Meuse Numérique SRL) for 2025"),
        "{registered}"
    );

    let issue_request_id = "0b7e6f52-3d1c-4a8e-9f60-5c2d1e0a9b71";
    let issue = [
        "issue",
        "--enterprise",
        "0403.019.261",
        "--type",
        "general",
        "--quantity",
        "10",
        "--paid",
        "150.00",
        "--payment-date",
        "2025-03-10",
        "--request-id",
        issue_request_id,
    ];
    let issued = succeed(&server, OPERATOR, &issue);
    assert!(
        issued.contains(&format!(
            "issued 10 general vouchers to 0403019261 (batch {issue_request_id}, valid until 2026-02-28"
        )),
        "{issued}"
    );
    assert!(issued.contains("at position 5"), "{issued}");

    let redeem = voucherctl(
        &server,
        PROVIDER_AG_0012,
        &[
            "redeem",
            "--provider",
            "AG-0012",
            "--module",
            "M-1",
            "--enterprise",
            "0403019261",
            "--niss",
            NISS,
            "--status",
            "employee",
            "--type",
            "general",
            "--hours",
            "3",
            "--date",
            "2025-06-01",
        ],
    );
    let (redeem_stdout, redeem_stderr) = (text(&redeem.stdout), text(&redeem.stderr));
    assert!(redeem.status.success(), "{redeem_stdout}{redeem_stderr}");
    assert!(
        redeem_stdout.contains("redeemed 3 hours of general vouchers of 0403019261"),
        "{redeem_stdout}"
    );
    assert!(redeem_stdout.contains("at position 6"), "{redeem_stdout}");
    // A generated request id is printed so that the write can be retried.
    assert!(redeem_stderr.starts_with("request id "), "{redeem_stderr}");
    assert!(
        !redeem_stdout.contains(NISS) && !redeem_stderr.contains(NISS),
        "the NISS was echoed"
    );

    // A retry with the same request id is answered with the original outcome.
    let replayed = succeed(&server, OPERATOR, &issue);
    assert!(replayed.contains("at position 5"), "{replayed}");
    assert!(replayed.contains("replayed yes"), "{replayed}");

    let wallet = succeed(
        &server,
        OPERATOR,
        &["wallet", "--enterprise", "0403.019.261"],
    );
    assert!(wallet.contains("balance: 7 general"), "{wallet}");
    assert!(
        wallet.contains(&format!("{issue_request_id}  general ")),
        "{wallet}"
    );

    let head = succeed(&server, AUDITOR, &["--json", "head"]);
    let head: serde_json::Value = serde_json::from_str(&head).expect("head is json");
    assert_eq!(head["position"], 6, "{head}");
    assert_eq!(head["hash"].as_str().map(str::len), Some(64), "{head}");

    // 500 vouchers for a 10-FTE company: over its quota of 400.
    let too_many = [
        "issue",
        "--enterprise",
        "0403019261",
        "--type",
        "general",
        "--quantity",
        "500",
        "--paid",
        "7500.00",
        "--payment-date",
        "2025-04-01",
    ];
    let refused = voucherctl(&server, OPERATOR, &too_many);
    let refused_stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{refused_stderr}");
    assert!(
        refused_stderr.contains("error: FAILED_PRECONDITION: ")
            && refused_stderr.contains("(reason QUOTA_EXCEEDED)"),
        "{refused_stderr}"
    );

    let mut too_many_json = vec!["--json"];
    too_many_json.extend_from_slice(&too_many);
    let refused = voucherctl(&server, OPERATOR, &too_many_json);
    assert_eq!(refused.status.code(), Some(1));
    let error: serde_json::Value =
        serde_json::from_slice(&refused.stdout).expect("the error is json");
    assert_eq!(error["code"], "FAILED_PRECONDITION", "{error}");
    assert_eq!(error["reason"], "QUOTA_EXCEEDED", "{error}");

    // The refusals wrote nothing.
    let head = succeed(&server, AUDITOR, &["--json", "head"]);
    let head: serde_json::Value = serde_json::from_str(&head).expect("head is json");
    assert_eq!(head["position"], 6, "{head}");

    server.stop();
}

//! README's lifecycle walk-through ("A whole lifecycle with the demo configuration"), run as
//! written: the lines of its `sh` block between `voucherctl wait` and `kill %1`, in bash, with
//! `voucherctl` the real binary and the real server of the demo configuration on 127.0.0.1:0,
//! so that the documented session cannot drift from what the binaries do. Its dates follow
//! today (GNU `date`), as the session says.

#[allow(
    unused_imports,
    reason = "the support module re-exports the demo tokens, which the README session sets itself"
)]
mod support;

use std::process::Command;

use support::*;

const SECTION: &str = "### A whole lifecycle with the demo configuration";

/// The commands of the walk-through that run against a server already serving: after the
/// `voucherctl wait` that follows the start, before the `kill %1` that stops it.
fn documented_session() -> String {
    let readme =
        std::fs::read_to_string(workspace_root().join("README.md")).expect("README.md can be read");
    let section = readme
        .split_once(SECTION)
        .unwrap_or_else(|| panic!("README.md has a section {SECTION:?}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("the section holds an sh block")
        .0;
    let lines: Vec<&str> = block.lines().collect();
    let wait = lines
        .iter()
        .position(|line| line.starts_with("voucherctl wait"))
        .expect("the session waits for the server");
    let kill = lines
        .iter()
        .position(|line| line.starts_with("kill %1"))
        .expect("the session stops the server");
    lines[wait + 1..kill].join("\n")
}

#[test]
fn the_readme_lifecycle_runs_as_written_through_the_real_binaries() {
    let server = Server::start();
    let session = documented_session();
    let script = format!("voucherctl() {{ \"$VOUCHERCTL_BIN\" \"$@\"; }}\n{session}\n");
    let output = Command::new("bash")
        .args(["-c", &script])
        .env("VOUCHERCTL_BIN", env!("CARGO_BIN_EXE_voucherctl"))
        .env("VOUCHERCTL_SERVER", &server.url)
        .env_remove("VOUCHERCTL_TOKEN")
        .env_remove("VOUCHERCTL_CA")
        .env_remove("VOUCHERCTL_CERT")
        .env_remove("VOUCHERCTL_KEY")
        .output()
        .expect("bash runs");
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    let transcript = format!("stdout:\n{stdout}\nstderr:\n{stderr}");

    // The company's code, in its written form, reached the provider's commands.
    let code = stdout
        .lines()
        .find_map(|line| line.strip_prefix("usage code "))
        .unwrap_or_else(|| panic!("the session prints its usage code\n{transcript}"))
        .trim()
        .to_owned();
    assert!(
        code.len() == 11 && code.chars().filter(|c| *c == '-').count() == 2,
        "the code {code:?} is written in three groups\n{transcript}"
    );
    // Exactly the two refusals the session announces, each with its reason.
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 2, "two refusals\n{transcript}");
    assert!(
        errors[0].contains("(reason QUOTA_EXCEEDED)"),
        "{transcript}"
    );
    assert!(
        errors[1].contains("(reason USAGE_CODE_CANCELLED)"),
        "{transcript}"
    );
    // Two filings against the code and the retry answered from the log, the cancel giving
    // back the one hour left (the code as stored: no dashes), and the head at the end. Each
    // filing's line comes back once more in the auditor's list of events.
    assert_eq!(
        (
            stdout
                .matches("redeemed 3 hours of general vouchers")
                .count(),
            stdout
                .matches("redeemed 2 hours of general vouchers")
                .count(),
        ),
        (3, 2),
        "two filings, the first retried, both listed as events\n{transcript}"
    );
    assert!(stdout.contains("replayed yes"), "{transcript}");
    let stored = code.replace('-', "");
    assert!(
        stdout.contains(&format!(
            "cancelled usage code {stored} of 0403019261: 1 hours back to the wallet"
        )),
        "{transcript}"
    );
    assert!(stdout.contains("head of the log: position"), "{transcript}");
    assert!(
        !stdout.contains("85073003328") && !stderr.contains("85073003328"),
        "a NISS is never printed"
    );
    server.stop();
}

//! voucherctl at scale, against the real server: batch files of issues and redemptions (a
//! report line per item, exit status 1 when any is refused, files of more than one call),
//! `wait` for a server to serve, and shell completions.

mod support;

use std::process::Command;

use support::*;

const ENTERPRISE: &str = "0403019261";

/// A budget, a provider and its module, and a registered company, for 2025.
fn given_a_registered_company(server: &Server) {
    succeed(
        server,
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
    succeed(
        server,
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
        server,
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
            "ai",
            "--from",
            "2025-01-01",
        ],
    );
    succeed(
        server,
        OPERATOR,
        &[
            "register",
            "--enterprise",
            ENTERPRISE,
            "--year",
            "2025",
            "--name",
            "Meuse Numérique SRL",
            "--legal-form",
            "commercial-company",
            "--region",
            "wallonia-french-speaking",
            "--fte",
            "12",
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
}

fn head_position(server: &Server) -> u64 {
    let head = succeed(server, AUDITOR, &["--json", "head"]);
    let value: serde_json::Value = serde_json::from_str(&head).expect("head as JSON");
    value["position"].as_u64().expect("a position")
}

fn write_file(folder: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = folder.path().join(name);
    std::fs::write(&path, text).expect("the batch file is written");
    path.display().to_string()
}

#[test]
fn an_issue_file_reports_each_item_and_exits_1_when_one_is_refused_then_replays() {
    let server = Server::start();
    given_a_registered_company(&server);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = write_file(
        &folder,
        "issues.csv",
        "enterprise,type,quantity,paid,payment-date,reference,request-id\n\
         0403.019.261,general,10,150.00,2025-03-10,\"VIR-1, March\",11111111-1111-4111-8111-111111111111\n\
         0403019261,general,500,7500.00,2025-04-01,VIR-2,22222222-2222-4222-8222-222222222222\n\
         0403019261,languages,5,75.00,2025-04-02,,33333333-3333-4333-8333-333333333333\n",
    );
    let output = voucherctl(&server, OPERATOR, &["issue-batch", &file]);
    let report = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{report}{}",
        text(&output.stderr)
    );
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines.len(),
        5,
        "a header, three items, a summary:\n{report}"
    );
    assert!(lines[0].starts_with("item  line  request-id"), "{report}");
    assert!(lines[1].contains("accepted") && lines[1].contains("issued 10 general vouchers"));
    assert!(
        lines[2].contains("refused") && lines[2].contains("FAILED_PRECONDITION QUOTA_EXCEEDED"),
        "{report}"
    );
    assert!(lines[3].contains("accepted") && lines[3].contains("5 languages vouchers"));
    assert_eq!(
        lines[4],
        "3 items: 2 accepted (0 of them replayed), 1 refused"
    );
    // Aligned: every row's outcome starts in the header's column.
    let outcome_column = lines[0].find("outcome").expect("an outcome column");
    for line in &lines[1..4] {
        let outcome = &line[outcome_column..];
        assert!(
            ["accepted", "refused"]
                .iter()
                .any(|word| outcome.starts_with(word)),
            "{report}"
        );
    }

    // Sent again: what was written is answered from the log, nothing is written twice.
    let head = head_position(&server);
    let again = voucherctl(&server, OPERATOR, &["issue-batch", &file]);
    let report = text(&again.stdout);
    assert_eq!(again.status.code(), Some(1), "{report}");
    assert!(
        report.contains("3 items: 2 accepted (2 of them replayed), 1 refused"),
        "{report}"
    );
    assert_eq!(head_position(&server), head);

    let wallet = succeed(&server, OPERATOR, &["wallet", "--enterprise", ENTERPRISE]);
    assert!(
        wallet.contains("balance: 10 general, 5 languages"),
        "{wallet}"
    );
    server.stop();
}

#[test]
fn a_redemption_file_in_json_lines_that_is_all_accepted_exits_0_and_never_shows_the_niss() {
    let server = Server::start();
    given_a_registered_company(&server);
    succeed(
        &server,
        OPERATOR,
        &[
            "issue",
            "--enterprise",
            ENTERPRISE,
            "--type",
            "general",
            "--quantity",
            "10",
            "--paid",
            "150.00",
            "--payment-date",
            "2025-03-10",
        ],
    );
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = write_file(
        &folder,
        "redemptions.jsonl",
        &format!(
            "{{\"provider\":\"AG-0012\",\"module\":\"M-1\",\"enterprise\":\"{ENTERPRISE}\",\"niss\":\"{NISS}\",\"status\":\"employee\",\"type\":\"general\",\"hours\":3,\"date\":\"2025-06-01\"}}\n\
             {{\"provider_id\":\"AG-0012\",\"module_id\":\"M-1\",\"enterprise_number\":\"{ENTERPRISE}\",\"national_number\":\"{NISS}\",\"trainee_status\":\"employee\",\"voucher_type\":\"general\",\"hours\":\"2\",\"training_date\":\"2025-06-15\"}}\n"
        ),
    );
    let output = voucherctl(
        &server,
        PROVIDER_AG_0012,
        &["--json", "redeem-batch", &file],
    );
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(!stdout.contains(NISS) && !stderr.contains(NISS));
    assert!(
        stderr.contains("request ids generated for 2 items"),
        "{stderr}"
    );
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(value["accepted"], 2);
    assert_eq!(value["refused"], 0);
    assert_eq!(value["items"][1]["line"], 2);
    assert_eq!(value["items"][1]["outcome"], "accepted");
    assert_eq!(value["items"][1]["events"][0]["hours_redeemed"]["hours"], 2);
    let statement = succeed(&server, AUDITOR, &["statement", "--provider", "AG-0012"]);
    assert!(statement.contains("5 hours redeemed"), "{statement}");
    server.stop();
}

#[test]
fn a_file_with_a_bad_line_sends_nothing_and_names_the_line() {
    let server = Server::start();
    given_a_registered_company(&server);
    let head = head_position(&server);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = write_file(
        &folder,
        "issues.csv",
        "enterprise,type,quantity,paid,payment-date\n\
         0403019261,general,1,15.00,2025-03-10\n\
         0403019261,gold,1,15.00,2025-03-10\n",
    );
    let output = voucherctl(&server, OPERATOR, &["issue-batch", &file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains(&format!(
            "{file}:3: column type: \"gold\" is not one of general, languages, eco-climate"
        )),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(head_position(&server), head, "nothing was written");
    server.stop();
}

#[test]
fn a_file_longer_than_one_call_is_sent_in_calls_of_a_thousand_items_in_order() {
    let server = Server::start();
    given_a_registered_company(&server);
    let folder = tempfile::tempdir().expect("a temporary folder");
    // 1 001 purchases of one voucher: the first 400 fill the yearly quota, the rest are refused;
    // the answers must come back item by item, in the file's order, across both calls.
    let mut csv = String::from("enterprise,type,quantity,paid,payment-date\n");
    for _ in 0..1_001 {
        csv.push_str("0403019261,general,1,15.00,2025-03-10\n");
    }
    let file = write_file(&folder, "issues.csv", &csv);
    let output = voucherctl(&server, OPERATOR, &["--json", "issue-batch", &file]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let value: serde_json::Value =
        serde_json::from_str(&text(&output.stdout)).expect("one JSON object");
    assert_eq!(value["accepted"], 400);
    assert_eq!(value["refused"], 601);
    let items = value["items"].as_array().expect("items");
    assert_eq!(items.len(), 1_001);
    assert_eq!(items[399]["outcome"], "accepted");
    assert_eq!(items[400]["outcome"], "refused");
    assert_eq!(items[400]["error"]["reason"], "QUOTA_EXCEEDED");
    assert_eq!(items[1_000]["line"], 1_002);
    assert_eq!(items[1_000]["error"]["reason"], "QUOTA_EXCEEDED");
    server.stop();
}

#[test]
fn wait_returns_once_the_server_serves_and_times_out_with_status_3_when_none_does() {
    let server = Server::start();
    let output = voucherctl(&server, AUDITOR, &["wait", "--timeout-seconds", "30"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("is serving"));
    server.stop();

    // A port nobody listens on (bound, then let go).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_voucherctl"))
        .args([
            "--server",
            &format!("http://127.0.0.1:{port}"),
            "wait",
            "--timeout-seconds",
            "1",
        ])
        .output()
        .expect("voucherctl runs");
    assert_eq!(output.status.code(), Some(3));
    assert!(
        text(&output.stderr).contains("was not serving after 1 seconds"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(env!("CARGO_BIN_EXE_voucherctl"))
            .args(["completions", shell])
            .output()
            .expect("voucherctl runs");
        assert!(output.status.success(), "{shell}");
        let script = text(&output.stdout);
        assert!(script.contains("issue-batch"), "{shell}: {script}");
        assert!(script.contains("trial-balance"), "{shell}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_voucherctl"))
        .args(["completions", "tcsh"])
        .output()
        .expect("voucherctl runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "not a shell clap_complete knows"
    );
}

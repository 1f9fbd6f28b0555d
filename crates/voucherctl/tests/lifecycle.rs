//! End to end: the real `voucher-ledger` server, with the demo configuration on 127.0.0.1:0 and
//! a fresh data folder, driven through the real `voucherctl` binary as a user would drive it.

mod support;

use support::*;

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

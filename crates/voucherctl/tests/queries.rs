//! The calls of issue 16 through the real `voucherctl` and `voucher-ledger` binaries: the
//! batch files for registrations, payouts and reversals, every `list` over more than one page
//! (page by page with `--page-token`, and `--all`), and an expiry run that says what is left.

mod support;

use serde_json::Value;
use support::*;

const NISS: [&str; 3] = ["85073003328", "90010112395", "75123145679"];

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("one JSON object")
}

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("the file is written");
    path.display().to_string()
}

#[test]
fn every_new_call_through_voucherctl_with_pages() {
    let server = Server::start();
    let files = tempfile::tempdir().expect("a folder for the files");
    succeed(
        &server,
        ADMINISTRATION,
        &[
            "budget",
            "open",
            "--year",
            "2025",
            "--allocated",
            "100000.00",
        ],
    );
    for provider in ["AG-0012", "AG-0013", "AG-0014"] {
        succeed(
            &server,
            ADMINISTRATION,
            &[
                "provider",
                "approve",
                "--provider",
                provider,
                "--name",
                "Formations",
                "--from",
                "2025-01-01",
            ],
        );
    }
    for module in ["M-1", "M-2", "M-3"] {
        succeed(
            &server,
            ADMINISTRATION,
            &[
                "module",
                "approve",
                "--module",
                module,
                "--provider",
                "AG-0012",
                "--title",
                "Digital basics",
                "--hours-max",
                "40",
                "--voucher-types",
                "general",
                "--themes",
                "digital",
                "--from",
                "2025-01-01",
            ],
        );
    }

    // Registrations from a file, three companies.
    let companies = write_file(
        files.path(),
        "companies.csv",
        "enterprise,year,name,legal-form,region,fte,turnover,balance-sheet,nace,registered-on\n\
         0403019261,2025,Menuiserie,commercial-company,wallonia-french-speaking,12.5,2500000.00,1200000.00,16.23,2025-02-01\n\
         0431150350,2025,Boulangerie,commercial-company,wallonia-french-speaking,3,400000.00,200000.00,10.71,2025-02-01\n\
         0403000158,2025,Garage,commercial-company,wallonia-french-speaking,30,3000000.00,1500000.00,45.20,2025-02-01\n",
    );
    let registered = succeed(&server, OPERATOR, &["register-batch", &companies]);
    assert!(registered.contains("3 items: 3 accepted"), "{registered}");

    // Companies, two a page: the first page and its token, then the second.
    let first = json(&succeed(
        &server,
        OPERATOR,
        &[
            "--json",
            "list",
            "companies",
            "--year",
            "2025",
            "--page-size",
            "2",
        ],
    ));
    assert_eq!(first["companies"].as_array().map(Vec::len), Some(2));
    let token = first["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(!token.is_empty());
    let second = json(&succeed(
        &server,
        OPERATOR,
        &[
            "--json",
            "list",
            "companies",
            "--year",
            "2025",
            "--page-size",
            "2",
            "--page-token",
            &token,
        ],
    ));
    assert_eq!(second["companies"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["next_page_token"], "");
    let all = succeed(
        &server,
        OPERATOR,
        &[
            "list",
            "companies",
            "--year",
            "2025",
            "--page-size",
            "2",
            "--all",
        ],
    );
    assert!(all.contains("3 entries in 2 page(s)"), "{all}");
    assert!(
        all.contains("0403019261") && all.contains("general 0/400"),
        "{all}"
    );

    // Vouchers, and their batches two a page.
    for date in ["2025-03-10", "2025-04-10", "2025-05-10"] {
        succeed(
            &server,
            OPERATOR,
            &[
                "issue",
                "--enterprise",
                "0403019261",
                "--type",
                "general",
                "--quantity",
                "10",
                "--paid",
                "150.00",
                "--payment-date",
                date,
            ],
        );
    }
    let batches = json(&succeed(
        &server,
        OPERATOR,
        &[
            "--json",
            "list",
            "batches",
            "--enterprise",
            "0403019261",
            "--page-size",
            "2",
            "--all",
        ],
    ));
    let valid_until: Vec<&str> = batches["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .filter_map(|b| b["valid_until"].as_str())
        .collect();
    assert_eq!(valid_until, ["2026-02-28", "2026-03-31", "2026-04-30"]);
    let expiring = json(&succeed(
        &server,
        AUDITOR,
        &[
            "--json",
            "list",
            "batches",
            "--enterprise",
            "0403019261",
            "--expiring-before",
            "2026-03-01",
        ],
    ));
    assert_eq!(expiring["batches"].as_array().map(Vec::len), Some(1));

    // Providers and modules, one a page.
    let providers = succeed(
        &server,
        PROVIDER_AG_0012,
        &["list", "providers", "--page-size", "1", "--all"],
    );
    assert!(providers.contains("3 entries in 3 page(s)"), "{providers}");
    let modules = json(&succeed(
        &server,
        AUDITOR,
        &[
            "--json",
            "list",
            "modules",
            "--provider",
            "AG-0012",
            "--theme",
            "digital",
            "--in-force-on",
            "2025-06-01",
            "--page-size",
            "2",
            "--all",
        ],
    ));
    assert_eq!(modules["modules"].as_array().map(Vec::len), Some(3));
    assert_eq!(modules["modules"][0]["themes"][0], "THEME_DIGITAL");

    // Redemptions, a reversal from a file, the provider's events three a page.
    let mut redemption_ids = Vec::new();
    for niss in NISS {
        let id = uuid_like(redemption_ids.len());
        succeed(
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
                niss,
                "--status",
                "employee",
                "--type",
                "general",
                "--hours",
                "2",
                "--date",
                "2025-06-01",
                "--request-id",
                &id,
            ],
        );
        redemption_ids.push(id);
    }
    let reversals = write_file(
        files.path(),
        "reversals.jsonl",
        &format!(
            "{{\"provider\": \"AG-0012\", \"redemption\": \"{}\", \"reason\": \"cancelled\", \"date\": \"2025-06-02\"}}\n",
            redemption_ids[1]
        ),
    );
    let reversed = succeed(&server, PROVIDER_AG_0012, &["reverse-batch", &reversals]);
    assert!(reversed.contains("1 items: 1 accepted"), "{reversed}");
    let events = json(&succeed(
        &server,
        OPERATOR,
        &[
            "--json",
            "list",
            "redemptions",
            "--provider",
            "AG-0012",
            "--page-size",
            "3",
            "--all",
        ],
    ));
    let kinds: Vec<bool> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|event| event.get("redemption_reversed").is_some())
        .collect();
    assert_eq!(kinds, [false, false, false, true]);

    // Payouts from a file, listed two a page.
    let payouts = write_file(
        files.path(),
        "payouts.csv",
        "provider,amount,date,reference\n\
         AG-0012,30.00,2025-07-01,SEPA-1\n\
         AG-0012,30.00,2025-08-01,SEPA-2\n\
         AG-0012,30.00,2025-09-01,SEPA-3\n",
    );
    let paid = succeed(&server, OPERATOR, &["payout-batch", &payouts]);
    assert!(paid.contains("3 items: 3 accepted"), "{paid}");
    let listed = succeed(
        &server,
        PROVIDER_AG_0012,
        &[
            "list",
            "payouts",
            "--provider",
            "AG-0012",
            "--page-size",
            "2",
        ],
    );
    assert!(listed.contains("2 entries in 1 page(s)"), "{listed}");
    assert!(listed.contains("next page: --page-token "), "{listed}");

    // An expiry run says what it expired and that nothing more is due.
    let expired = json(&succeed(
        &server,
        OPERATOR,
        &["--json", "expire", "--as-of", "2026-03-01"],
    ));
    assert_eq!(expired["expiry"]["batches_expired"], 1);
    assert_eq!(expired["expiry"]["more_due"], false);

    // A page token of another list is refused with its reason.
    let refused = voucherctl(
        &server,
        OPERATOR,
        &["list", "providers", "--page-token", &token],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("PAGE_TOKEN_MISMATCH"),
        "{}",
        text(&refused.stderr)
    );
}

/// A request id of our own for the `index`th redemption, to reverse it later.
fn uuid_like(index: usize) -> String {
    format!("6f1c3b0e-8d2a-4c55-9b0e-2f4a7d9c1e3{index}")
}

//! A year of the scheme through the API, then a restart: every figure, the wallet and the head of
//! the log are what they were, and a retried request is answered, not written again.

use ledger_proto::event::v1::event::Payload;
use ledger_proto::event::v1::VoucherType;
use ledger_proto::v1::{
    self as api, AccountBalance, BackupRequest, Budget, CompaniesReport, CompanyCounts,
    GetBudgetRequest, GetWalletRequest, HoursCount, IssueVouchersRequest, ReadEventsRequest,
    Statement, TrainingHours, TrialBalance, Wallet, WalletBalance, WalletBatch, WriteResponse,
    YearSummary,
};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::requests::*;
use crate::support::*;

/// What the operator, the provider and the administration see at the end.
#[derive(Debug, PartialEq)]
struct Figures {
    wallet: Wallet,
    statement: Statement,
    budget: Budget,
    summary: YearSummary,
    companies: CompaniesReport,
    training_hours: TrainingHours,
    trial_balance: TrialBalance,
    /// The wallet and the budget as they stood after the issuance (position 5).
    wallet_after_issuance: Wallet,
    budget_after_issuance: Budget,
}

impl Figures {
    async fn read(server: &Server) -> Figures {
        let auditor = server.client(AUDITOR);
        Figures {
            wallet: auditor
                .get_wallet(get_wallet(COMPANY_A))
                .await
                .expect("the wallet can be read"),
            statement: auditor
                .get_statement(get_statement("AG-0012"))
                .await
                .expect("the statement can be read"),
            budget: auditor
                .get_budget(get_budget(2025))
                .await
                .expect("the budget can be read"),
            summary: auditor
                .get_year_summary(get_year_summary(2025))
                .await
                .expect("the year summary can be read"),
            companies: auditor
                .get_companies(get_companies(2025))
                .await
                .expect("the companies report can be read"),
            training_hours: auditor
                .get_training_hours(get_training_hours(2025))
                .await
                .expect("the training hours can be read"),
            trial_balance: auditor
                .get_trial_balance(get_trial_balance())
                .await
                .expect("the trial balance can be read"),
            wallet_after_issuance: auditor
                .get_wallet(GetWalletRequest {
                    as_of: as_of_position(5),
                    ..get_wallet(COMPANY_A)
                })
                .await
                .expect("the wallet can be read as it was"),
            budget_after_issuance: auditor
                .get_budget(GetBudgetRequest {
                    as_of: as_of_position(5),
                    ..get_budget(2025)
                })
                .await
                .expect("the budget can be read as it was"),
        }
    }
}

#[track_caller]
fn receipt(response: &WriteResponse) -> &api::Receipt {
    response
        .receipt
        .as_ref()
        .expect("a write answers a receipt")
}

#[track_caller]
fn assert_written(response: &WriteResponse, first_position: u64, event_count: u32) {
    let receipt = receipt(response);
    assert_eq!(
        (
            receipt.first_position,
            receipt.event_count,
            receipt.replayed
        ),
        (first_position, event_count, false),
        "receipt {receipt:?}"
    );
    assert_eq!(response.events.len(), event_count as usize);
}

fn balances(general: u32) -> Vec<WalletBalance> {
    [
        (VoucherType::General, general),
        (VoucherType::Languages, 0),
        (VoucherType::EcoClimate, 0),
    ]
    .into_iter()
    .map(|(voucher_type, vouchers)| WalletBalance {
        voucher_type: voucher_type as i32,
        vouchers,
        reserved: 0,
    })
    .collect()
}

/// Recomputes the hash chain from position 1 with what `ReadEvents` answers, and checks that it
/// ends at `head`.
async fn assert_chain_ends_at_head(server: &Server, head: &api::Head) {
    let events = server
        .client(AUDITOR)
        .read_events(ReadEventsRequest {
            from_position: 1,
            limit: 0,
        })
        .await
        .expect("an auditor may read the events");
    let mut prev_hash = [0u8; 32];
    for (index, audit_event) in events.iter().enumerate() {
        let event = audit_event
            .event
            .as_ref()
            .expect("an audit event has its event");
        let position = index as u64 + 1;
        assert_eq!(event.position, position, "positions have no gaps");
        assert_eq!(audit_event.prev_hash, hex::encode(prev_hash));
        let hash: [u8; 32] = Sha256::new()
            .chain_update(prev_hash)
            .chain_update(position.to_be_bytes())
            .chain_update(event.encode_to_vec())
            .finalize()
            .into();
        assert_eq!(
            audit_event.hash,
            hex::encode(hash),
            "chain hash at {position}"
        );
        prev_hash = hash;
    }
    assert_eq!(events.len() as u64, head.position);
    assert_eq!(head.hash, hex::encode(prev_hash));
}

#[tokio::test]
async fn lifecycle_figures_wallet_and_head_survive_a_restart_and_a_retry_is_replayed() {
    let server = Server::start().await;
    let administration = server.client(ADMINISTRATION);
    let operator = server.client(OPERATOR);
    let provider = server.client(PROVIDER_AG_0012);
    let auditor = server.client(AUDITOR);

    // The administration opens 2025 and approves a provider and its module.
    let opened = administration
        .open_budget(open_budget(2025, "100000.00"))
        .await
        .expect("budget 2025 opens");
    assert_written(&opened, 1, 1);
    let approved = administration
        .approve_provider(approve_provider("AG-0012", "2025-01-01"))
        .await
        .expect("provider AG-0012 is approved");
    assert_written(&approved, 2, 1);
    let approved = administration
        .approve_module(approve_module(MODULE, "AG-0012", "2025-01-01"))
        .await
        .expect("the module is approved");
    assert_written(&approved, 3, 1);

    // The operator registers a company (dotted number; stored plain) and issues 20 vouchers.
    let registered = operator
        .register_company(register_company(COMPANY_A_DOTTED, 2025))
        .await
        .expect("the company registers for 2025");
    assert_written(&registered, 4, 1);
    let issue = issue_vouchers(COMPANY_A, 20, "2025-03-10");
    let issued = operator
        .issue_vouchers(issue.clone())
        .await
        .expect("20 vouchers are issued");
    assert_written(&issued, 5, 1);
    let wallet = auditor
        .get_wallet(get_wallet(COMPANY_A_DOTTED))
        .await
        .expect("the wallet can be read");
    assert_eq!(wallet.enterprise_number, COMPANY_A);
    assert_eq!(wallet.balances, balances(20));
    assert_eq!(
        wallet.batches,
        [WalletBatch {
            batch_id: issue.request_id.clone(),
            voucher_type: VoucherType::General as i32,
            quantity: 20,
            remaining: 20,
            payment_date: "2025-03-10".into(),
            // Paid in March 2025: valid until the last day of February 2026.
            valid_until: "2026-02-28".into(),
            budget_year: 2025,
            earmarked: 0,
        }]
    );

    // The provider redeems 8 hours, reverses them, then redeems 6.
    let first_redemption = redeem_hours("AG-0012", MODULE, COMPANY_A, WORKER_1, "8", "2025-04-15");
    let redeemed = provider
        .redeem_hours(first_redemption.clone())
        .await
        .expect("8 hours are redeemed");
    assert_written(&redeemed, 6, 1);
    let statement = auditor
        .get_statement(get_statement("AG-0012"))
        .await
        .expect("the statement can be read");
    assert_eq!(
        (statement.redeemed_hours, statement.owed_eur.as_str()),
        (8, "240.00")
    );
    let budget = auditor.get_budget(get_budget(2025)).await.expect("budget");
    assert_eq!(
        (budget.committed_eur.as_str(), budget.spent_eur.as_str()),
        ("180.00", "120.00")
    );

    let reversed = provider
        .reverse_redemption(reverse_redemption(
            "AG-0012",
            &first_redemption.request_id,
            "2025-04-20",
        ))
        .await
        .expect("the redemption is reversed");
    assert_written(&reversed, 7, 1);
    let wallet = auditor
        .get_wallet(get_wallet(COMPANY_A))
        .await
        .expect("wallet");
    assert_eq!(wallet.balances, balances(20));
    assert_eq!(wallet.batches[0].remaining, 20);
    assert_eq!(wallet.batches[0].valid_until, "2026-02-28");
    let statement = auditor
        .get_statement(get_statement("AG-0012"))
        .await
        .expect("statement");
    assert_eq!(
        (statement.redeemed_hours, statement.owed_eur.as_str()),
        (0, "0.00")
    );
    let budget = auditor.get_budget(get_budget(2025)).await.expect("budget");
    assert_eq!(
        (budget.committed_eur.as_str(), budget.spent_eur.as_str()),
        ("300.00", "0.00")
    );

    let redeemed = provider
        .redeem_hours(redeem_hours(
            "AG-0012",
            MODULE,
            COMPANY_A,
            WORKER_1,
            "6",
            "2025-05-20",
        ))
        .await
        .expect("6 hours are redeemed");
    assert_written(&redeemed, 8, 1);

    // On their last day of validity nothing is due: the run writes nothing, and its receipt
    // says where its events would have gone.
    let head_before = server.head().await;
    let nothing_due = operator
        .expire_vouchers(expire_vouchers("2026-02-28"))
        .await
        .expect("an expiry run with nothing due is accepted");
    let nothing_due = receipt(&nothing_due);
    assert_eq!(
        (nothing_due.first_position, nothing_due.event_count),
        (head_before.position + 1, 0)
    );
    assert_eq!(server.head().await, head_before);

    // The 14 vouchers left expire after the 28th of February 2026; the provider is paid.
    let expired = operator
        .expire_vouchers(expire_vouchers("2026-03-01"))
        .await
        .expect("the expiry run is accepted");
    assert_written(&expired, 9, 1);
    match &expired.events[0].payload {
        Some(Payload::VouchersExpired(event)) => {
            assert_eq!(event.batch_id, issue.request_id);
            assert_eq!(event.quantity, 14);
            assert_eq!(event.region_share_released_eur, "210.00");
        }
        other => panic!("expected VouchersExpired, got {other:?}"),
    }
    let paid = operator
        .record_payout(record_payout("AG-0012", "180.00", "2026-03-15"))
        .await
        .expect("the payout is recorded");
    assert_written(&paid, 10, 1);

    let figures = Figures::read(&server).await;
    assert_eq!(
        figures.wallet,
        Wallet {
            enterprise_number: COMPANY_A.into(),
            registered_years: vec![2025],
            balances: balances(0),
            batches: vec![],
            as_of_position: 10,
        }
    );
    assert_eq!(
        figures.statement,
        Statement {
            provider_id: "AG-0012".into(),
            name: "Formations AG-0012 SRL".into(),
            redeemed_hours: 6,
            owed_eur: "0.00".into(),
            paid_eur: "180.00".into(),
            as_of_position: 10,
        }
    );
    let budget = Budget {
        year: 2025,
        allocated_eur: "100000.00".into(),
        committed_eur: "0.00".into(),
        spent_eur: "90.00".into(),
        released_eur: "210.00".into(),
        available_eur: "99910.00".into(),
        as_of_position: 10,
    };
    assert_eq!(figures.budget, budget);
    assert_eq!(
        figures.summary,
        YearSummary {
            year: 2025,
            companies_registered: 1,
            companies_holding_vouchers: 1,
            companies_benefiting: 1,
            workers_trained: 1,
            hours_trained: 6,
            vouchers_issued: 20,
            budget: Some(budget),
            as_of_position: 10,
        }
    );
    let counts = |key: &str| CompanyCounts {
        key: key.into(),
        registered: 1,
        holding: 1,
        benefiting: 1,
    };
    assert_eq!(
        figures.companies,
        CompaniesReport {
            year: 2025,
            total: Some(counts("total")),
            by_size_class: vec![counts("fte_2_to_50")],
            by_sector: vec![counts("16")],
            as_of_position: 10,
        }
    );
    let hours = |key: &str| {
        vec![HoursCount {
            key: key.into(),
            hours: 6,
        }]
    };
    assert_eq!(
        figures.training_hours,
        TrainingHours {
            year: 2025,
            total: 6,
            by_voucher_type: hours("general"),
            by_provider: hours("AG-0012"),
            by_theme: hours("digital"),
            by_sector: hours("16"),
            as_of_position: 10,
        }
    );
    // Debits minus credits: the company paid 300.00 and the Region's 300.00 was committed;
    // 90.00 of it was spent (6 hours) and 210.00 released (14 expired vouchers), whose company
    // share the scheme keeps; the provider was paid its 180.00.
    assert_eq!(figures.trial_balance.total_eur, "0.00");
    assert_eq!(figures.trial_balance.as_of_position, 10);
    let non_zero: Vec<(&str, &str)> = figures
        .trial_balance
        .accounts
        .iter()
        .filter(|account| account.balance_eur != "0.00")
        .map(
            |AccountBalance {
                 account,
                 balance_eur,
             }| (account.as_str(), balance_eur.as_str()),
        )
        .collect();
    assert_eq!(
        non_zero,
        [
            ("company_contributions", "-300.00"),
            ("company_expired", "210.00"),
            ("provider_paid/AG-0012", "180.00"),
            ("region_budget/2025", "-90.00"),
        ]
    );
    assert_eq!(figures.wallet_after_issuance.balances, balances(20));
    assert_eq!(figures.wallet_after_issuance.as_of_position, 5);
    assert_eq!(
        (
            figures.budget_after_issuance.committed_eur.as_str(),
            figures.budget_after_issuance.available_eur.as_str()
        ),
        ("300.00", "99700.00")
    );
    let head = server.head().await;
    assert_eq!(head.position, 10);
    assert_chain_ends_at_head(&server, &head).await;
    for (from_position, limit, positions) in [(2, 3, vec![2, 3, 4]), (9, 5, vec![9, 10])] {
        let page = auditor
            .read_events(ReadEventsRequest {
                from_position,
                limit,
            })
            .await
            .expect("a page of events");
        let read: Vec<u64> = page
            .iter()
            .filter_map(|audit_event| audit_event.event.as_ref())
            .map(|event| event.position)
            .collect();
        assert_eq!(read, positions, "page from {from_position}, limit {limit}");
    }

    // After a restart on the same data, nothing has moved.
    let server = server.restart().await;
    assert_eq!(Figures::read(&server).await, figures);
    assert_eq!(server.head().await, head);
    assert_chain_ends_at_head(&server, &head).await;

    // A retry of the issuance, same id and content: the original outcome, nothing written.
    let operator = server.client(OPERATOR);
    let retried = operator
        .issue_vouchers(issue.clone())
        .await
        .expect("a retry is answered");
    let retried_receipt = receipt(&retried);
    assert!(retried_receipt.replayed, "receipt {retried_receipt:?}");
    assert_eq!(retried_receipt.first_position, 5);
    assert_eq!(retried_receipt.event_count, 1);
    assert_eq!(retried_receipt.request_id, issue.request_id);
    assert_eq!(retried_receipt.recorded_at, receipt(&issued).recorded_at);
    assert_eq!(retried.events, issued.events);
    assert_eq!(server.head().await, head);
    assert_eq!(Figures::read(&server).await, figures);

    // The same id with other content is refused.
    let other_content = IssueVouchersRequest {
        quantity: 10,
        paid_amount_eur: "150.00".into(),
        ..issue
    };
    let status = refused(operator.issue_vouchers(other_content).await);
    assert_status(&status, Code::AlreadyExists, "REQUEST_ID_REUSED");
    assert_eq!(server.head().await, head);

    // An auditor's backup starts a server with the same head, chain and figures.
    let backup_home = tempfile::Builder::new()
        .prefix("voucher-ledger-e2e-backup-")
        .tempdir()
        .expect("a temporary folder for the backup");
    let backup = server
        .client(AUDITOR)
        .backup(BackupRequest {
            target_dir: backup_home.path().join("data").display().to_string(),
        })
        .await
        .expect("an auditor takes a backup");
    assert_eq!(backup.head.as_ref(), Some(&head));
    server.stop().await;
    let from_backup = Server::start_on(backup_home).await;
    assert_eq!(from_backup.head().await, head);
    assert_eq!(Figures::read(&from_backup).await, figures);
    assert_chain_ends_at_head(&from_backup, &head).await;
}

/// docs/RULES.md rule 16: the ledger keeps only a pseudonym; the number reaches neither the log of
/// the service, nor the store, nor the events an auditor reads.
#[tokio::test]
async fn a_national_number_reaches_neither_the_service_log_nor_the_store_nor_the_events() {
    let server = Server::given(world().vouchers(COMPANY_A, 10, "2025-03-10")).await;
    let redeemed = server
        .client(PROVIDER_AG_0012)
        .redeem_hours(redeem_hours(
            "AG-0012",
            MODULE,
            COMPANY_A,
            "85.07.30-033.28",
            "3",
            "2025-04-15",
        ))
        .await
        .expect("a redemption with a dotted national number");
    match &redeemed.events[0].payload {
        Some(Payload::HoursRedeemed(event)) => {
            assert_eq!(event.worker_pseudonym.len(), 64, "hex of HMAC-SHA-256");
        }
        other => panic!("expected HoursRedeemed, got {other:?}"),
    }
    let events = server
        .client(AUDITOR)
        .read_events(ReadEventsRequest::default())
        .await
        .expect("events");

    let stopped = server.stop().await;
    let mut store_bytes = Vec::new();
    collect_file_bytes(&stopped.data_dir(), &mut store_bytes);
    let log = stopped.log();
    // The checks below would pass on an empty or opaque store or log: show they are neither.
    assert!(
        contains(&store_bytes, COMPANY_A.as_bytes()),
        "the store is readable"
    );
    assert!(
        log.contains("redeem_hours"),
        "the log records the redemption: {log}"
    );
    let number = WORKER_1.as_bytes();
    assert!(
        !contains(&store_bytes, number),
        "the store holds the number"
    );
    assert!(!contains(&store_bytes, b"85.07.30-033.28"));
    let events: Vec<u8> = events.iter().flat_map(Message::encode_to_vec).collect();
    assert!(!contains(&events, number));
    assert!(
        !log.contains(WORKER_1) && !log.contains("85.07.30"),
        "{log}"
    );
}

fn collect_file_bytes(path: &std::path::Path, into: &mut Vec<u8>) {
    for entry in std::fs::read_dir(path).expect("the data folder can be listed") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            collect_file_bytes(&path, into);
        } else {
            into.extend(std::fs::read(&path).expect("a store file can be read"));
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

//! The auditors' features against the real `voucher-ledger` binary: a subscription that sees
//! every position once while thousands of events are written, the offline `verify` against a
//! matrix of tampered copies, an independent recomputation of the chain from the JSON Lines
//! export, and a backup taken during writes that verifies and serves the same head.
//!
//! Servers run with the demo configuration on 127.0.0.1:0 and folders of their own; offline
//! commands run on folders of stopped servers (or copies of them), as an auditor would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ledger_proto::event::v1::{event::Payload, Event, LogEntry, RequestRecord};
use ledger_proto::v1::administration_service_client::AdministrationServiceClient;
use ledger_proto::v1::audit_service_client::AuditServiceClient;
use ledger_proto::v1::operator_service_client::OperatorServiceClient;
use ledger_proto::v1::provider_service_client::ProviderServiceClient;
use ledger_proto::v1::report_service_client::ReportServiceClient;
use ledger_proto::v1::{self as api, subscribe_response::Message as Streamed};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use ledger_testkit::bearer as with_token;
use ledger_testkit::tokens::{ADMINISTRATION, AUDITOR, OPERATOR, PROVIDER_AG_0012 as PROVIDER};
use ledger_testkit::Process;

/// Longest wait for a subscriber to see the head: generous, for a 2-core machine busy with
/// other builds.
const WAIT_MAX: Duration = Duration::from_secs(120);

/// `voucher-ledger ARGS` with a clean environment.
fn voucher_ledger(args: &[&str]) -> Command {
    ledger_testkit::command(env!("CARGO_BIN_EXE_voucher-ledger"), args)
}

/// A running `voucher-ledger serve --demo` on a folder of the caller's.
struct Server {
    process: Process,
    channel: Channel,
}

impl Server {
    async fn start(data: &Path) -> Server {
        let mut command = voucher_ledger(&["serve", "--demo", "--listen", "127.0.0.1:0"]);
        command.arg("--data").arg(data);
        let process = Process::started(&mut command, &data.with_extension("server.log")).await;
        let channel = Channel::from_shared(process.uri())
            .expect("a valid uri")
            .connect()
            .await
            .expect("the server accepts a connection");
        Server { process, channel }
    }

    fn audit(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel.clone())
    }

    async fn head(&self) -> api::Head {
        self.audit()
            .get_head(with_token(api::GetHeadRequest {}, AUDITOR))
            .await
            .expect("an auditor reads the head")
            .into_inner()
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(self) {
        self.process.stop().await;
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The budget, provider AG-0012 with module M-1, and company 0403.019.261 with 20 general
/// vouchers, a redemption of 3 hours, a reversed redemption of 2 hours, an expiry and a
/// payout: every kind of event but withdrawals. Returns the position of the registration.
async fn a_year_of_the_scheme(server: &Server) -> u64 {
    let administration = AdministrationServiceClient::new(server.channel.clone());
    let operator = OperatorServiceClient::new(server.channel.clone());
    let provider = ProviderServiceClient::new(server.channel.clone());
    let mut admin = administration.clone();
    admin
        .open_budget(with_token(
            api::OpenBudgetRequest {
                request_id: request_id(),
                year: 2025,
                allocated_eur: "7657000.00".into(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect("budget");
    admin
        .approve_provider(with_token(
            api::ApproveProviderRequest {
                request_id: request_id(),
                provider_id: "AG-0012".into(),
                name: "Formations Meuse".into(),
                approved_from: "2025-01-01".into(),
                approved_until: String::new(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect("provider");
    admin
        .approve_module(with_token(
            api::ApproveModuleRequest {
                request_id: request_id(),
                module_id: "M-1".into(),
                provider_id: "AG-0012".into(),
                title: "AI for small businesses".into(),
                hours_max: 40,
                accepted_voucher_types: vec![ledger_proto::event::v1::VoucherType::General as i32],
                themes: vec![ledger_proto::event::v1::Theme::Ai as i32],
                approved_from: "2025-01-01".into(),
                approved_until: String::new(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect("module");
    let mut operator = operator.clone();
    let registered = operator
        .register_company(with_token(
            api::RegisterCompanyRequest {
                request_id: request_id(),
                enterprise_number: "0403.019.261".into(),
                year: 2025,
                name: "Meuse Numérique SRL".into(),
                legal_form: ledger_proto::event::v1::LegalForm::CommercialCompany as i32,
                region: ledger_proto::event::v1::Region::WalloniaFrenchSpeaking as i32,
                fte: "12".into(),
                turnover_eur: "1000000".into(),
                balance_sheet_total_eur: "500000".into(),
                autonomous: true,
                secondary_activity_months: 0,
                nace_sector: "62.01".into(),
                registered_on: "2025-01-05".into(),
            },
            OPERATOR,
        ))
        .await
        .expect("registration")
        .into_inner();
    operator
        .issue_vouchers(with_token(
            api::IssueVouchersRequest {
                request_id: request_id(),
                enterprise_number: "0403019261".into(),
                voucher_type: ledger_proto::event::v1::VoucherType::General as i32,
                quantity: 20,
                paid_amount_eur: "300.00".into(),
                payment_date: "2025-03-10".into(),
                payment_reference: "VIR-2025-0001".into(),
            },
            OPERATOR,
        ))
        .await
        .expect("issuance");
    let mut provider = provider.clone();
    let mut redemption_ids = Vec::new();
    for (hours, date) in [("3", "2025-06-01"), ("2", "2025-06-15")] {
        let redemption_id = request_id();
        provider
            .redeem_hours(with_token(
                api::RedeemHoursRequest {
                    request_id: redemption_id.clone(),
                    provider_id: "AG-0012".into(),
                    module_id: "M-1".into(),
                    enterprise_number: "0403019261".into(),
                    national_number: "85.07.30-033.28".into(),
                    trainee_status: ledger_proto::event::v1::TraineeStatus::Employee as i32,
                    voucher_type: ledger_proto::event::v1::VoucherType::General as i32,
                    hours: hours.into(),
                    training_date: date.into(),
                    usage_code: String::new(),
                },
                PROVIDER,
            ))
            .await
            .expect("redemption");
        redemption_ids.push(redemption_id);
    }
    provider
        .reverse_redemption(with_token(
            api::ReverseRedemptionRequest {
                request_id: request_id(),
                provider_id: "AG-0012".into(),
                redemption_id: redemption_ids[1].clone(),
                reason: "training cancelled".into(),
                reversed_on: "2025-06-20".into(),
            },
            PROVIDER,
        ))
        .await
        .expect("reversal");
    operator
        .expire_vouchers(with_token(
            api::ExpireVouchersRequest {
                request_id: request_id(),
                as_of: "2026-03-01".into(),
            },
            OPERATOR,
        ))
        .await
        .expect("expiry");
    operator
        .record_payout(with_token(
            api::RecordPayoutRequest {
                request_id: request_id(),
                provider_id: "AG-0012".into(),
                amount_eur: "90.00".into(),
                payout_date: "2025-07-01".into(),
                payout_reference: "PAY-2025-0001".into(),
            },
            OPERATOR,
        ))
        .await
        .expect("payout");
    registered.receipt.expect("a receipt").first_position
}

/// Approves modules `M-<first>` … `M-<first + count - 1>` of AG-0012, one event each, from
/// `callers` concurrent callers, so that the writer commits them in groups.
async fn approve_modules(channel: &Channel, first: u32, count: u32, callers: u32) {
    ledger_testkit::world::approve_modules_concurrently(channel, first, count, callers).await;
}

/// The reason and metadata of a status's `ErrorInfo`.
fn error_info(status: &Status) -> (String, std::collections::HashMap<String, String>) {
    let info = status.get_details_error_info().expect("an ErrorInfo");
    (info.reason, info.metadata)
}

// ---- subscriptions ----

/// Follows the log from `from` until `target` is delivered, subscribing again where the server
/// says to after SUBSCRIBER_TOO_SLOW. Returns every position received and the resumptions.
async fn follow(channel: Channel, from: u64, target: u64) -> (Vec<u64>, u32) {
    let mut positions = Vec::new();
    let mut resumed = 0;
    let mut next = from;
    while next <= target {
        let mut stream = AuditServiceClient::new(channel.clone())
            .subscribe(with_token(
                api::SubscribeRequest {
                    from_position: next,
                    filter: None,
                },
                AUDITOR,
            ))
            .await
            .expect("an auditor subscribes")
            .into_inner();
        loop {
            match stream.message().await {
                Ok(Some(message)) => {
                    if let Some(Streamed::Event(audit_event)) = message.message {
                        let position = audit_event.event.expect("an event").position;
                        positions.push(position);
                        if position >= target {
                            return (positions, resumed);
                        }
                    }
                }
                Ok(None) => panic!("the subscription ended without a status"),
                Err(status) => {
                    let (reason, metadata) = error_info(&status);
                    assert_eq!(reason, "SUBSCRIBER_TOO_SLOW", "{status:?}");
                    next = metadata["resume_from_position"]
                        .parse()
                        .expect("a position");
                    resumed += 1;
                    break;
                }
            }
        }
    }
    (positions, resumed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscriber_from_position_1_sees_every_position_once_in_order_while_10_000_events_are_written(
) {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&home.path().join("data")).await;
    a_year_of_the_scheme(&server).await;
    approve_modules(&server.channel, 1_000, 1_000, 16).await;
    let target = server.head().await.position + 10_000;

    let subscriber = tokio::spawn(follow(server.channel.clone(), 1, target));
    let started = Instant::now();
    approve_modules(&server.channel, 10_000, 10_000, 64).await;
    let written = started.elapsed();
    let (positions, resumed) = tokio::time::timeout(WAIT_MAX, subscriber)
        .await
        .expect("the subscriber reaches the head")
        .expect("the subscriber ran");
    println!("10 000 events written in {written:?}; subscriber resumed {resumed} times");
    assert_eq!(server.head().await.position, target);
    let expected: Vec<u64> = (1..=target).collect();
    assert!(
        positions == expected,
        "every position 1..={target} once, in order"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filtered_subscription_sends_only_its_events_then_heartbeats_with_the_head() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&home.path().join("data")).await;
    a_year_of_the_scheme(&server).await;
    let head = server.head().await;

    let mut stream = server
        .audit()
        .subscribe(with_token(
            api::SubscribeRequest {
                from_position: 0,
                filter: Some(api::SubscribeFilter {
                    stream_prefixes: vec!["company/".into()],
                    event_types: vec!["HoursRedeemed".into(), "RedemptionReversed".into()],
                }),
            },
            AUDITOR,
        ))
        .await
        .expect("an auditor subscribes")
        .into_inner();
    let mut types = Vec::new();
    let heartbeat = loop {
        let message = tokio::time::timeout(WAIT_MAX, stream.message())
            .await
            .expect("a message in time")
            .expect("the stream goes on")
            .expect("a message");
        match message.message.expect("a message") {
            Streamed::Event(audit_event) => {
                let event = audit_event.event.expect("an event");
                assert!(event.stream.starts_with("company/"));
                types.push(match event.payload.expect("a payload") {
                    Payload::HoursRedeemed(_) => "HoursRedeemed",
                    Payload::RedemptionReversed(_) => "RedemptionReversed",
                    other => panic!("filtered out, yet sent: {other:?}"),
                });
            }
            Streamed::Heartbeat(heartbeat) => break heartbeat,
        }
    };
    assert_eq!(
        types,
        ["HoursRedeemed", "HoursRedeemed", "RedemptionReversed"]
    );
    assert_eq!(heartbeat.head, Some(head.clone()));
    assert_eq!(heartbeat.next_position, head.position + 1);

    for refused in [
        api::SubscribeFilter {
            stream_prefixes: Vec::new(),
            event_types: vec!["HoursRedeemedV2".into()],
        },
        api::SubscribeFilter {
            stream_prefixes: vec!["company/".into(); 33],
            event_types: Vec::new(),
        },
    ] {
        let status = server
            .audit()
            .subscribe(with_token(
                api::SubscribeRequest {
                    from_position: 1,
                    filter: Some(refused),
                },
                AUDITOR,
            ))
            .await
            .expect_err("a bad filter is refused");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    let status = server
        .audit()
        .subscribe(with_token(api::SubscribeRequest::default(), OPERATOR))
        .await
        .expect_err("subscriptions are for auditors");
    assert_eq!(status.code(), Code::PermissionDenied);

    // A graceful stop does not wait for the open subscription, which is told to resume.
    server.stop().await;
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    let (reason, metadata) = error_info(&status);
    assert_eq!(
        (status.code(), reason.as_str()),
        (Code::Unavailable, "LEDGER_UNAVAILABLE")
    );
    assert_eq!(
        metadata["resume_from_position"],
        (head.position + 1).to_string()
    );
}

// ---- verify, against tampered copies ----

fn entry_key(position: u64) -> Vec<u8> {
    let mut key = vec![b'e'];
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn chain_hash(prev: &[u8], position: u64, event: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(prev)
        .chain_update(position.to_be_bytes())
        .chain_update(event)
        .finalize()
        .to_vec()
}

fn read_entry(db: &sled::Db, position: u64) -> LogEntry {
    let value = db
        .get(entry_key(position))
        .expect("readable")
        .expect("the entry is there");
    LogEntry::decode(value.as_ref()).expect("an entry")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("readable folder") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A copy of `data`, edited through sled behind the store's back.
fn tampered_copy(data: &Path, into: &Path, edit: impl FnOnce(&sled::Db)) -> PathBuf {
    copy_dir(data, into);
    let db = sled::open(into).expect("the copy opens in sled");
    edit(&db);
    db.flush().expect("flush");
    drop(db);
    into.to_path_buf()
}

/// Removes the copy's checkpoint file, so that nothing but the log speaks for it.
fn without_checkpoint(folder: PathBuf) -> PathBuf {
    std::fs::remove_file(folder.join(ledger_store::CHECKPOINT_FILE_NAME))
        .expect("remove the checkpoint");
    folder
}

/// Rewrites the head record to `position` and the hash stored there.
fn rewrite_head(db: &sled::Db, position: u64) {
    let hash = read_entry(db, position).hash;
    let mut record = position.to_be_bytes().to_vec();
    record.extend_from_slice(&hash);
    db.insert(b"h", record).expect("write the head");
}

fn verify(data: &Path, expect_head: Option<&api::Head>) -> Output {
    let mut command = voucher_ledger(&["verify", "--data"]);
    command.arg(data);
    if let Some(head) = expect_head {
        command
            .arg("--expect-head")
            .arg(format!("{}:{}", head.position, head.hash));
    }
    command.output().expect("verify runs")
}

/// `verify`'s exit status and the position its FAILED line names.
fn failed_at(output: &Output) -> Option<u64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let position = stdout
        .lines()
        .find_map(|line| line.strip_prefix("FAILED at position "))
        .and_then(|rest| rest.split(':').next())
        .and_then(|number| number.parse().ok());
    match output.status.code() {
        Some(0) => {
            assert_eq!(position, None, "a sound log names no position:\n{stdout}");
            None
        }
        Some(1) => Some(position.unwrap_or_else(|| panic!("no FAILED line:\n{stdout}"))),
        other => panic!(
            "verify exited with {other:?}:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_every_kind_of_tampering_and_names_its_first_position() {
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("data");
    let server = Server::start(&data).await;
    let registered_at = a_year_of_the_scheme(&server).await;
    approve_modules(&server.channel, 100, 20, 4).await;
    let head = server.head().await;
    server.stop().await;
    let last = head.position;
    assert!(last > 20 && registered_at > 1 && registered_at < 10);

    // The intact folder, with and without the head recorded earlier.
    assert_eq!(failed_at(&verify(&data, None)), None);
    assert_eq!(failed_at(&verify(&data, Some(&head))), None);
    let stdout = String::from_utf8_lossy(&verify(&data, Some(&head)).stdout).into_owned();
    assert!(
        stdout.contains(&format!("sound: head position {last} hash {}", head.hash)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("checkpoint at position {last}")),
        "{stdout}"
    );

    let copy = |name: &str| home.path().join(name);
    // A redemption's hours raised to 9, its draws and amount left alone, every later hash
    // recomputed and the checkpoint removed: a sound chain whose postings still balance, but
    // whose event says something the ledger never did.
    let mut redeemed_at = 0;
    let hours_raised = without_checkpoint(tampered_copy(&data, &copy("hours-raised"), |db| {
        redeemed_at = (1..=last)
            .find(|position| {
                let event =
                    Event::decode(read_entry(db, *position).event.as_slice()).expect("an event");
                matches!(event.payload, Some(Payload::HoursRedeemed(_)))
            })
            .expect("the year has a redemption");
        rewrite_event_from(db, redeemed_at, last, |event| {
            let Some(Payload::HoursRedeemed(redeemed)) = event.payload.as_mut() else {
                panic!("a redemption");
            };
            assert_ne!(redeemed.hours, 9);
            redeemed.hours = 9;
        });
    }));
    let cases: Vec<(&str, PathBuf, Option<u64>, Option<u64>)> = vec![
        (
            "a redemption's hours raised, re-chained, checkpoint removed",
            hours_raised,
            Some(redeemed_at),
            Some(redeemed_at),
        ),
        (
            "a flipped byte in an event",
            tampered_copy(&data, &copy("flipped"), |db| {
                let mut entry = read_entry(db, 7);
                let middle = entry.event.len() / 2;
                entry.event[middle] ^= 0x20;
                db.insert(entry_key(7), entry.encode_to_vec())
                    .expect("write");
            }),
            Some(7),
            Some(7),
        ),
        (
            "a deleted event",
            tampered_copy(&data, &copy("deleted"), |db| {
                db.remove(entry_key(5)).expect("remove");
            }),
            Some(5),
            Some(5),
        ),
        (
            "two events swapped",
            tampered_copy(&data, &copy("swapped"), |db| {
                let (four, nine) = (read_entry(db, 4), read_entry(db, 9));
                db.insert(entry_key(4), nine.encode_to_vec())
                    .expect("write");
                db.insert(entry_key(9), four.encode_to_vec())
                    .expect("write");
            }),
            Some(4),
            Some(4),
        ),
        (
            "a truncated tail",
            tampered_copy(&data, &copy("truncated"), |db| {
                for position in last - 3..=last {
                    db.remove(entry_key(position)).expect("remove");
                }
            }),
            Some(last - 3),
            Some(last - 3),
        ),
        (
            "a truncated tail, head record and checkpoint to match",
            without_checkpoint(tampered_copy(&data, &copy("truncated-head"), |db| {
                for position in last - 3..=last {
                    db.remove(entry_key(position)).expect("remove");
                }
                rewrite_head(db, last - 4);
            })),
            // The request records of the removed events still name their positions.
            Some(last - 3),
            Some(last - 3),
        ),
        (
            "an event rewritten, every later hash recomputed, checkpoint left",
            tampered_copy(&data, &copy("rewritten-checkpoint"), |db| {
                rewrite_from(db, registered_at, last);
            }),
            Some(last),
            Some(last),
        ),
        (
            "every request record deleted",
            tampered_copy(&data, &copy("no-requests"), |db| {
                for key in db.scan_prefix(b"r").keys() {
                    db.remove(key.expect("a key")).expect("remove");
                }
            }),
            Some(1),
            Some(1),
        ),
        (
            "a request record pointing one position further",
            tampered_copy(&data, &copy("request-moved"), |db| {
                let key = request_key_of(db, 5);
                let value = db
                    .get(&key)
                    .expect("readable")
                    .expect("the record is there");
                let mut record = RequestRecord::decode(value.as_ref()).expect("a record");
                record.first_position += 1;
                db.insert(key, record.encode_to_vec()).expect("write");
            }),
            Some(5),
            Some(5),
        ),
        (
            "an event rewritten, every later hash recomputed, checkpoint removed",
            without_checkpoint(tampered_copy(&data, &copy("rewritten"), |db| {
                rewrite_from(db, registered_at, last);
            })),
            None,
            Some(last),
        ),
    ];
    for (what, folder, without_head, with_head) in cases {
        assert_eq!(
            failed_at(&verify(&folder, None)),
            without_head,
            "{what}, without --expect-head"
        );
        assert_eq!(
            failed_at(&verify(&folder, Some(&head))),
            with_head,
            "{what}, with --expect-head"
        );
    }

    let missing = verify(&home.path().join("nothing-here"), None);
    assert_eq!(missing.status.code(), Some(2), "no ledger in the folder");
}

/// The key of the request record of the command that wrote the event at `position`.
fn request_key_of(db: &sled::Db, position: u64) -> Vec<u8> {
    let event = Event::decode(read_entry(db, position).event.as_slice()).expect("an event");
    let request_id = uuid::Uuid::parse_str(&event.request_id).expect("a uuid");
    let mut key = vec![b'r'];
    key.extend_from_slice(request_id.as_bytes());
    key
}

/// Renames the company registered at `position`, then recomputes the hash of every entry from
/// there to `last` and the head record: a chain that holds, telling another story.
fn rewrite_from(db: &sled::Db, position: u64, last: u64) {
    rewrite_event_from(db, position, last, |event| {
        let Some(Payload::CompanyRegistered(registered)) = event.payload.as_mut() else {
            panic!("position {position} is the registration");
        };
        registered.name = "Another Company SA".into();
    });
}

/// Edits the event at `position`, then recomputes the hash of every entry from there to
/// `last` and the head record.
fn rewrite_event_from(db: &sled::Db, position: u64, last: u64, edit: impl FnOnce(&mut Event)) {
    let mut entry = read_entry(db, position);
    let mut event = Event::decode(entry.event.as_slice()).expect("an event");
    edit(&mut event);
    entry.event = event.encode_to_vec();
    let mut prev = read_entry(db, position - 1).hash;
    for current in position..=last {
        if current != position {
            entry = read_entry(db, current);
        }
        entry.hash = chain_hash(&prev, current, &entry.event);
        prev = entry.hash.clone();
        db.insert(entry_key(current), entry.encode_to_vec())
            .expect("write");
    }
    rewrite_head(db, last);
}

// ---- export ----

fn export(data: &Path, format: &str) -> Vec<u8> {
    let output = voucher_ledger(&["export", "--format", format, "--data"])
        .arg(data)
        .output()
        .expect("export runs");
    assert!(
        output.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_reader_recomputes_the_chain_from_the_jsonl_export_to_the_head() {
    let home = tempfile::tempdir().expect("temp dir");
    let data = home.path().join("data");
    let server = Server::start(&data).await;
    a_year_of_the_scheme(&server).await;
    let head = server.head().await;
    let mut reports = ReportServiceClient::new(server.channel.clone());
    let summary = reports
        .get_year_summary(with_token(
            api::GetYearSummaryRequest {
                year: 2025,
                as_of: None,
            },
            AUDITOR,
        ))
        .await
        .expect("the year's summary")
        .into_inner();
    let hours = reports
        .get_training_hours(with_token(
            api::GetTrainingHoursRequest {
                year: 2025,
                as_of: None,
            },
            AUDITOR,
        ))
        .await
        .expect("the year's hours")
        .into_inner();
    server.stop().await;

    let jsonl = export(&data, "jsonl");
    assert_eq!(
        jsonl,
        export(&data, "jsonl"),
        "the same log, the same bytes"
    );

    // The reader: serde_json and sha2, nothing of the ledger's.
    let mut prev_hash = "0".repeat(64);
    let mut position = 0u64;
    let mut payloads = Vec::new();
    for line in String::from_utf8(jsonl).expect("utf-8").lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("a JSON object");
        position += 1;
        assert_eq!(event["position"], position, "positions run 1, 2, 3");
        assert_eq!(event["prev_hash"], prev_hash.as_str());
        let bytes = hex::decode(event["event_bytes_hex"].as_str().expect("hex")).expect("hex");
        let previous = hex::decode(&prev_hash).expect("hex");
        let hash = hex::encode(chain_hash(&previous, position, &bytes));
        assert_eq!(event["hash"], hash.as_str(), "hash at {position}");
        payloads.extend(
            event
                .as_object()
                .expect("an object")
                .keys()
                .filter(|key| {
                    key.ends_with("_opened")
                        || key.ends_with("_approved")
                        || key.ends_with("_registered")
                        || key.ends_with("_issued")
                        || key.ends_with("_redeemed")
                        || key.ends_with("_reversed")
                        || key.ends_with("_expired")
                        || key.ends_with("_recorded")
                })
                .cloned(),
        );
        prev_hash = hash;
    }
    assert_eq!((position, prev_hash), (head.position, head.hash.clone()));
    assert!(
        payloads.contains(&"hours_redeemed".to_owned()),
        "{payloads:?}"
    );

    // The CSV reports are the report RPCs' figures.
    let csv = String::from_utf8(export(&data, "csv")).expect("utf-8");
    let figures: BTreeMap<(String, String, String, String), String> = csv
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 6, "{line}");
            assert_eq!(fields[1], "2025");
            (
                (
                    fields[0].to_owned(),
                    fields[2].to_owned(),
                    fields[3].to_owned(),
                    fields[4].to_owned(),
                ),
                fields[5].to_owned(),
            )
        })
        .collect();
    let figure = |report: &str, breakdown: &str, key: &str, measure: &str| {
        figures
            .get(&(report.into(), breakdown.into(), key.into(), measure.into()))
            .cloned()
            .unwrap_or_else(|| panic!("no {report} {breakdown} {key} {measure}:\n{csv}"))
    };
    let budget = summary.budget.expect("a budget");
    assert_eq!(figure("budget", "total", "", "spent_eur"), budget.spent_eur);
    assert_eq!(
        figure("budget", "total", "", "available_eur"),
        budget.available_eur
    );
    assert_eq!(
        figure("companies", "total", "", "benefiting"),
        summary.companies_benefiting.to_string()
    );
    assert_eq!(
        figure("workers", "total", "", "trained"),
        summary.workers_trained.to_string()
    );
    assert_eq!(
        figure("hours", "total", "", "hours"),
        hours.total.to_string()
    );
    assert_eq!(figure("hours", "provider", "AG-0012", "hours"), "3");
    assert_eq!(figure("hours", "theme", "ai", "hours"), "3");
}

// ---- backup ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_during_writes_verifies_and_serves_its_head() {
    let home = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&home.path().join("data")).await;
    a_year_of_the_scheme(&server).await;
    let writers = tokio::spawn({
        let channel = server.channel.clone();
        async move { approve_modules(&channel, 100, 3_000, 16).await }
    });
    // Somewhere in the middle of the writes.
    while server.head().await.position < 500 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let target = home.path().join("backups").join("2025-06-30");
    let backup = server
        .audit()
        .backup(with_token(
            api::BackupRequest {
                target_dir: target.display().to_string(),
            },
            AUDITOR,
        ))
        .await
        .expect("an auditor takes a backup")
        .into_inner();
    let backup_head = backup.head.clone().expect("the backup's head");
    writers.await.expect("the writers finished");
    let head_after = server.head().await;
    assert!(
        backup_head.position >= 500 && backup_head.position < head_after.position,
        "taken during the writes: {} of {}",
        backup_head.position,
        head_after.position
    );

    // Refusals: not empty, not absolute, not an auditor.
    let status = server
        .audit()
        .backup(with_token(
            api::BackupRequest {
                target_dir: target.display().to_string(),
            },
            AUDITOR,
        ))
        .await
        .expect_err("the folder holds a store now");
    assert_eq!(
        (status.code(), error_info(&status).0.as_str()),
        (Code::FailedPrecondition, "BACKUP_DIR_NOT_EMPTY")
    );
    let status = server
        .audit()
        .backup(with_token(
            api::BackupRequest {
                target_dir: "relative/folder".into(),
            },
            AUDITOR,
        ))
        .await
        .expect_err("a relative path");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = server
        .audit()
        .backup(with_token(
            api::BackupRequest {
                target_dir: home.path().join("other").display().to_string(),
            },
            OPERATOR,
        ))
        .await
        .expect_err("backups are for auditors");
    assert_eq!(status.code(), Code::PermissionDenied);
    server.stop().await;

    let output = verify(&target, Some(&backup_head));
    assert_eq!(failed_at(&output), None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "sound: head position {} hash {}",
            backup_head.position, backup_head.hash
        )),
        "{stdout}"
    );

    let restored = Server::start(&target).await;
    assert_eq!(restored.head().await, backup_head);
    restored.stop().await;
}

// ---- a subscriber too slow for the broadcast ----

/// An in-process server whose engine keeps only two groups for live subscribers, so that a
/// subscriber that stops reading falls behind after a few hundred events. Answers its URI.
async fn server_with_a_tiny_broadcast(
    data: &Path,
) -> (
    String,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    use ledger_domain::{PolicyTable, Principal, PseudonymKey};
    use ledger_engine::{Engine, EngineConfig, SystemClock};
    use ledger_proto::v1::administration_service_server::AdministrationServiceServer;
    use ledger_proto::v1::audit_service_server::AuditServiceServer;
    use ledger_server::auth::{Authentication, Tokens};
    use ledger_server::services::Ledger;

    let policy = PolicyTable::from_toml_str(
        &std::fs::read_to_string(ledger_testkit::policy_file()).expect("policy"),
    )
    .expect("the policy parses");
    let mut config = EngineConfig::new(data, policy);
    config.broadcast_capacity_groups = 2;
    let engine = Engine::start(config, std::sync::Arc::new(SystemClock)).expect("engine starts");
    let digest = |token: &str| -> [u8; 32] { Sha256::digest(token.as_bytes()).into() };
    let tokens = Tokens::new(&[
        (digest(ADMINISTRATION), Principal::Administration),
        (digest(AUDITOR), Principal::Auditor),
    ]);
    let ledger = Ledger::new(
        engine.handle(),
        Authentication::Tokens(tokens),
        PseudonymKey::new(vec![7; 32]).expect("a long enough key"),
        64 * 1024,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let address = listener.local_addr().expect("an address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let streams = ledger.clone();
    let serving = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(AdministrationServiceServer::new(ledger.clone()))
            .add_service(AuditServiceServer::new(ledger))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async move {
                    let _ = stopped.await;
                    streams.close_streams();
                },
            )
            .await
            .expect("the server ran");
        engine.shutdown().await;
    });
    (format!("http://{address}"), stop, serving)
}

/// A connection whose HTTP/2 windows are the protocol's smallest (64 KiB), instead of the
/// megabytes tonic offers by default: an unread stream fills them after a few hundred events.
async fn connect_with_small_windows(uri: &str) -> Channel {
    Channel::from_shared(uri.to_owned())
        .expect("a valid uri")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("the server accepts a connection")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_falls_behind_is_told_so_and_resumes_where_it_says() {
    let home = tempfile::tempdir().expect("temp dir");
    let (uri, stop, serving) = server_with_a_tiny_broadcast(&home.path().join("data")).await;
    // Two connections: the subscription that is not read fills its connection's HTTP/2 flow
    // control window, which would stall the writes' answers on the same connection.
    let channel = connect_with_small_windows(&uri).await;
    let subscriber = connect_with_small_windows(&uri).await;
    let mut admin = AdministrationServiceClient::new(channel.clone());
    admin
        .approve_provider(with_token(
            api::ApproveProviderRequest {
                request_id: request_id(),
                provider_id: "AG-0012".into(),
                name: "Formations Meuse".into(),
                approved_from: "2025-01-01".into(),
                approved_until: String::new(),
            },
            ADMINISTRATION,
        ))
        .await
        .expect("provider");

    // Subscribed, then not read while 600 groups are written one after another: more than the
    // connection's window, the stream's buffer and the broadcast's two groups hold.
    let mut stream = AuditServiceClient::new(subscriber.clone())
        .subscribe(with_token(api::SubscribeRequest::default(), AUDITOR))
        .await
        .expect("an auditor subscribes")
        .into_inner();
    approve_modules(&channel, 1, 600, 1).await;

    let mut positions = Vec::new();
    let status = loop {
        let message = tokio::time::timeout(WAIT_MAX, stream.message())
            .await
            .expect("the subscriber is told it fell behind");
        match message {
            Ok(Some(message)) => {
                if let Some(Streamed::Event(audit_event)) = message.message {
                    positions.push(audit_event.event.expect("an event").position);
                }
            }
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    let (reason, metadata) = error_info(&status);
    assert_eq!(
        (status.code(), reason.as_str()),
        (Code::ResourceExhausted, "SUBSCRIBER_TOO_SLOW")
    );
    let delivered = *positions.last().expect("some events came first");
    assert_eq!(positions, (1..=delivered).collect::<Vec<u64>>());
    assert!(delivered < 601, "it fell behind before the end");
    assert_eq!(metadata["last_delivered_position"], delivered.to_string());
    let resume_from: u64 = metadata["resume_from_position"]
        .parse()
        .expect("a position");
    assert_eq!(resume_from, delivered + 1);

    let (rest, resumed) = follow(subscriber, resume_from, 601).await;
    assert_eq!(resumed, 0, "a reading subscriber keeps up");
    assert_eq!(rest, (resume_from..=601).collect::<Vec<u64>>());

    let _ = stop.send(());
    serving.await.expect("the server stopped");
}

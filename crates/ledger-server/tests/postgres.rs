//! The ledger on PostgreSQL (issue 19), with the real `voucher-ledger` binary and a real
//! PostgreSQL server that the test starts on 127.0.0.1 (see `ledger_store_pg::cluster`):
//!
//! - failover: under the load of the crash campaign's eight callers, the writing process is
//!   SIGKILLed while a hot standby (`postgres_standby`, in a data folder of its own) follows
//!   it and serves reads; the standby takes over without replaying, and the checks of the crash campaign follow: every
//!   acknowledged request in the log exactly once where its receipt says, retries of the
//!   unanswered ones replayed exactly when they made it, retries of acknowledged ones answering
//!   their original receipt, wallets and reports as the model says; at the end, nothing in the
//!   log that nobody sent, `verify --postgres` sound at the head, and the reports equal to
//!   those of a process that replays the whole log (no checkpoint: a rebuild). Prints the
//!   failover times (kill to the standby being the writer, and to its first accepted write);
//! - a hot standby's reports, head and audit stream equal the writer's, and a write sent to it
//!   is refused UNAVAILABLE / NOT_THE_WRITER with the writer's address, writing nothing;
//! - a primary and its synchronous standby: the primary stopped hard under load and the
//!   standby promoted, the same ledger process (a two-host connection string) answering
//!   UNAVAILABLE / LEDGER_UNAVAILABLE meanwhile, then reconnecting and accepting the retries;
//!   and, with `postgres_reconnect_deadline_seconds = 0`, the writer's connection cut while its
//!   COMMIT waits for the standby (committed, unanswered): the process stops, and after a
//!   restart the retries answer `replayed`. Each with the crash campaign's checks and the end
//!   checks above. Prints promotion -> first accepted write;
//! - a hot standby whose connections the server terminates connects again and follows on, and
//!   names the writer's `advertise_address` in NOT_THE_WRITER;
//! - `import` moves a sled ledger into an empty database and back, hash for hash, refusing a
//!   target that is not empty;
//! - two processes started as writers at once: exactly one serves, the other stops naming the
//!   writer's lock;
//! - `config print` shows the store and masks the connection's password.
//!
//! Skipped, saying so, where no PostgreSQL server binaries are installed (`.ci/run` installs
//! them).

mod crash_support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crash_support::*;
use ledger_store_pg::cluster::{binaries, TestCluster};
use tonic_types::StatusExt;

/// Writer deaths in the failover scenario: each one a takeover by a standby under load.
const FAILOVERS: u32 = 3;

fn cluster_or_skip(test: &str) -> Option<TestCluster> {
    if binaries().is_none() {
        eprintln!("SKIPPED {test}: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
        return None;
    }
    Some(TestCluster::start("").expect("a test cluster starts"))
}

fn postgres_env(cluster: &TestCluster) -> Vec<(String, String)> {
    vec![
        ("VOUCHER_LEDGER__STORE".to_owned(), "postgres".to_owned()),
        (
            "VOUCHER_LEDGER__POSTGRES_CONNECTION".to_owned(),
            cluster.connection(),
        ),
    ]
}

/// Waits until the process logged `needle` (it is running and got that far).
async fn wait_for_log(log_path: &Path, needle: &str) {
    let started = Instant::now();
    while !without_ansi(&read_log(log_path)).contains(needle) {
        assert!(
            started.elapsed() < START_WAIT,
            "the process never logged {needle:?}; its stderr:\n{}",
            log_tail(log_path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `Campaign::start`, with the PostgreSQL settings: a writer on `home/process-0`, its logs in
/// `home`, the budget, the provider and its modules set up.
async fn pg_campaign(home: &Path, seed: u64, pg_env: &[(String, String)]) -> Campaign {
    let mut campaign = Campaign {
        rng: Rng(seed),
        data_dir: home.join("process-0"),
        logs_dir: home.to_path_buf(),
        dates: Dates::fixed(),
        model: Model::default(),
        audit: LogAudit::new(),
        callers: (0..CALLERS).map(|index| Caller::new(index, seed)).collect(),
        server: None,
        starts: 0,
        stats: Stats::default(),
        startup_estimate: Duration::from_millis(100),
        rebuild_estimate: Duration::from_millis(100),
        touched: std::collections::BTreeSet::new(),
        checkpoint_interval_events: None,
        last_replay_events: None,
        server_interval_events: 0,
        after_kill: None,
    };
    campaign.start_server(pg_env).await;
    campaign.set_up().await;
    campaign
}

/// The checks at the end of a scenario, on a running writer: every acknowledged request in
/// the log where its receipt says, once, and nothing that nobody sent; `verify --postgres`
/// sound at the head; the reports equal to those of a process that replays the whole log (a
/// fresh data folder, no checkpoint). Stops the writer; returns the events in the log.
async fn check_the_log_end_to_end(
    campaign: &mut Campaign,
    home: &Path,
    pg_env: &[(String, String)],
    connection: &str,
) -> u64 {
    // Every accepted request is in the log where its receipt says, once, and nothing else.
    let channel = campaign.channel();
    campaign.audit.catch_up(&channel).await;
    let mut lost = Vec::new();
    for (request_id, placed) in &campaign.model.accepted {
        match campaign.audit.requests.get(request_id) {
            Some(found) => assert_eq!(found, placed, "request {request_id}"),
            None => lost.push(request_id.clone()),
        }
    }
    assert!(lost.is_empty(), "acknowledged requests LOST: {lost:?}");
    let unknown = campaign
        .audit
        .requests
        .keys()
        .filter(|request_id| !campaign.model.accepted.contains_key(*request_id))
        .count();
    assert_eq!(unknown, 0, "the log holds requests nobody sent");
    let events: u64 = campaign
        .model
        .accepted
        .values()
        .map(|placed| u64::from(placed.event_count))
        .sum();
    assert_eq!(events, campaign.audit.position, "events in the log");

    // The projections equal a rebuild: a process without a checkpoint replays the whole log.
    let wallets: Vec<String> = campaign.model.companies.keys().take(32).cloned().collect();
    let before = reports(&channel, &campaign.dates, &wallets).await;
    check_reports(&before, &campaign.model);
    campaign
        .server
        .take()
        .expect("a running server")
        .stop()
        .await;
    let head = campaign.audit.head();
    let data = campaign.data_dir.to_string_lossy().into_owned();
    let (status, stdout, stderr) = offline(&[
        "verify",
        "--data",
        &data,
        "--postgres",
        connection,
        "--expect-head",
        &head,
    ]);
    assert!(
        status.success() && stdout.contains("sound"),
        "verify of the postgresql log ({status}):\n{stdout}\n{stderr}"
    );
    campaign.data_dir = home.join("rebuild");
    campaign.start_server(pg_env).await;
    let rebuilt = reports(&campaign.channel(), &campaign.dates, &wallets).await;
    assert_eq!(
        before, rebuilt,
        "the reports equal those of a replay from position 1"
    );
    let replayed = without_ansi(&read_log(
        &campaign
            .logs_dir
            .join(format!("server-{}.log", campaign.starts)),
    ));
    assert!(
        !replayed.contains("replaying the log after the checkpoint"),
        "the last start replayed from position 1"
    );
    campaign
        .server
        .take()
        .expect("a running server")
        .stop()
        .await;

    events
}

/// What a standby logs once it has the writer's lock and writes on from its own head.
const TAKEOVER_LINE: &str = "standby took over as the writer; continuing from its own head";

/// Polls the head of `channel` until it reaches `position` (a standby following its writer).
async fn wait_for_head(channel: &tonic::transport::Channel, position: u64) {
    let started = Instant::now();
    loop {
        let head = get_head(channel).await;
        if head.position >= position {
            assert_eq!(
                head.position, position,
                "the standby is not ahead of its writer"
            );
            return;
        }
        assert!(
            started.elapsed() < START_WAIT,
            "the standby stayed at position {} behind its writer's {position}",
            head.position
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_standby_answers_reads_from_the_writers_log_and_refuses_writes_naming_the_writer() {
    let Some(cluster) = cluster_or_skip(
        "a_hot_standby_answers_reads_from_the_writers_log_and_refuses_writes_naming_the_writer",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let pg_env = postgres_env(&cluster);
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-standby-")
        .tempdir()
        .expect("a temporary folder");
    let mut campaign = pg_campaign(home.path(), seed_from_env(), &pg_env).await;
    // Before and after it starts, the writer writes; the standby follows.
    campaign.write_in_turn(12).await;
    let mut standby_env = pg_env.clone();
    standby_env.push((
        "VOUCHER_LEDGER__POSTGRES_STANDBY".to_owned(),
        "true".to_owned(),
    ));
    let env = campaign.start_env(&standby_env);
    let standby_log = home.path().join("standby.log");
    let standby = Launch::spawn(&home.path().join("standby"), &standby_log, &env)
        .ready()
        .await;
    campaign.write_in_turn(12).await;
    let writer_head = get_head(&campaign.channel()).await;
    wait_for_head(&standby.channel, writer_head.position).await;
    assert_eq!(
        get_head(&standby.channel).await,
        writer_head,
        "the same head, hash included"
    );

    // Its reports are the writer's, and its audit stream holds the writer's requests.
    let wallets: Vec<String> = campaign.model.companies.keys().cloned().collect();
    let on_writer = reports(&campaign.channel(), &campaign.dates, &wallets).await;
    let on_standby = reports(&standby.channel, &campaign.dates, &wallets).await;
    assert_eq!(
        on_writer, on_standby,
        "the standby reports what the writer does"
    );
    check_reports(&on_standby, &campaign.model);
    let mut audit = LogAudit::new();
    audit.catch_up(&standby.channel).await;
    for (request_id, placed) in &campaign.model.accepted {
        assert_eq!(
            audit.requests.get(request_id),
            Some(placed),
            "request {request_id}"
        );
    }

    // A write sent to it: UNAVAILABLE / NOT_THE_WRITER naming the writer, and nothing written,
    // there or anywhere; the same write at the writer is accepted once.
    let op = campaign.callers[0].next_op(&campaign.dates);
    let refused = call(&standby.channel, &op.write)
        .await
        .expect_err("a standby refuses a write");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    let info = refused
        .get_details_error_info()
        .expect("the refusal carries an ErrorInfo");
    assert_eq!(info.reason, "NOT_THE_WRITER");
    let writer_address = info
        .metadata
        .get("writer")
        .expect("the writer advertised its address")
        .clone();
    let writer_log = without_ansi(&read_log(&campaign.logs_dir.join("server-1.log")));
    assert!(
        writer_log.contains(&format!("address={writer_address}")),
        "the address named ({writer_address}) is where the writer serves"
    );
    assert_eq!(
        get_head(&standby.channel).await,
        writer_head,
        "the standby wrote nothing"
    );
    assert_eq!(
        get_head(&campaign.channel()).await,
        writer_head,
        "the writer got nothing"
    );
    let receipt = call(&campaign.channel(), &op.write)
        .await
        .expect("the writer accepts the write");
    assert!(!receipt.replayed, "written once, at the writer");
    campaign.callers[0].apply(&op);
    campaign.model.accept(&op, Placed::of(&receipt));
    wait_for_head(
        &standby.channel,
        get_head(&campaign.channel()).await.position,
    )
    .await;

    // Both stop cleanly; the standby never replayed after its start.
    standby.stop().await;
    campaign
        .server
        .take()
        .expect("a running writer")
        .stop()
        .await;
    let standby_log = without_ansi(&read_log(&standby_log));
    assert!(
        !standby_log.contains(TAKEOVER_LINE),
        "the standby never took over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_writer_is_killed_under_load_and_nothing_is_lost() {
    let Some(cluster) = cluster_or_skip(
        "a_standby_takes_over_when_the_writer_is_killed_under_load_and_nothing_is_lost",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    // Every process this test starts keeps its log in the cluster (the settings go to each
    // start: `voucher_ledger` removes the environment's).
    let pg_env = postgres_env(&cluster);
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-failover-")
        .tempdir()
        .expect("a temporary folder");
    let seed = seed_from_env();
    println!("postgres failover: {FAILOVERS} writer deaths, seed {seed}");
    let mut campaign = pg_campaign(home.path(), seed, &pg_env).await;
    let mut takeovers = Vec::new();
    let mut first_writes = Vec::new();
    for failover in 1..=FAILOVERS {
        let standby_dir = home.path().join(format!("process-{failover}"));
        let log_path = campaign.next_log_path();
        let mut standby_env = pg_env.clone();
        standby_env.push((
            "VOUCHER_LEDGER__POSTGRES_STANDBY".to_owned(),
            "true".to_owned(),
        ));
        let env = campaign.start_env(&standby_env);
        // A hot standby: it serves reads at once, from the state it follows.
        let standby = Launch::spawn(&standby_dir, &log_path, &env).ready().await;
        let writer_head = get_head(&campaign.channel()).await;
        wait_for_head(&standby.channel, writer_head.position).await;

        let delay = campaign
            .rng
            .duration_between(Duration::from_millis(300), Duration::from_millis(1200));
        let (acknowledged, unanswered, _status) = campaign.burst(Ending::Sigkill(delay)).await;
        let killed = Instant::now();
        wait_for_log(&log_path, TAKEOVER_LINE).await;
        let takeover = killed.elapsed();
        // It wrote on from the head it had followed: nothing replayed from position 1, or
        // from a checkpoint, once it had the lock.
        let standby_log = without_ansi(&read_log(&log_path));
        let after_takeover = &standby_log[standby_log.find(TAKEOVER_LINE).unwrap_or(0)..];
        assert!(
            !after_takeover.contains("replaying")
                && !after_takeover.contains("ledger state rebuilt from the log"),
            "the standby replayed the log after it took over:\n{after_takeover}"
        );
        let followed = field_number(after_takeover, "followed_events").unwrap_or(0);
        let tail = field_number(after_takeover, "events_after_lock").unwrap_or(0);
        campaign.server = Some(standby);
        campaign.data_dir = standby_dir;
        // What a client sees: its retry of a write the dead writer left unanswered, with the
        // same request id, accepted by the new writer (the checks below retry it again and
        // find it in the log, answered as a replay).
        if let Some(op) = unanswered.first() {
            match send(&campaign.channel(), &op.write).await {
                Answer::Accepted(_) => {}
                other => panic!("the first retry on the new writer: {other:?}"),
            }
        }
        let first_write = killed.elapsed();
        campaign
            .check_after_restart(&acknowledged, &unanswered)
            .await;
        println!(
            "failover {failover}: {} acknowledged in the burst, {} unanswered; writer SIGKILLed -> standby the writer in {takeover:.0?} (it had followed {followed} events, folded {tail} more after taking the lock), first accepted write after {first_write:.0?}",
            acknowledged.len(),
            unanswered.len()
        );
        takeovers.push(takeover);
        first_writes.push(first_write);
    }

    let events =
        check_the_log_end_to_end(&mut campaign, home.path(), &pg_env, &cluster.connection()).await;

    println!(
        "postgres failover: {} requests acknowledged, {} events, 0 lost, 0 duplicated; {} unanswered found in the log, {} not; {} retries replayed",
        campaign.model.accepted.len(),
        events,
        campaign.stats.unanswered_found_in_log,
        campaign.stats.unanswered_not_in_log,
        campaign.stats.retries_replayed
    );
    println!("postgres failover times: standby the writer {takeovers:.0?}, first accepted write {first_writes:.0?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_started_as_writers_at_once_exactly_one_serves() {
    let Some(cluster) =
        cluster_or_skip("two_processes_started_as_writers_at_once_exactly_one_serves")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let home = tempfile::tempdir().expect("a temporary folder");
    let env = postgres_env(&cluster);
    let mut launches: Vec<Launch> = (0..2)
        .map(|index| {
            Launch::spawn(
                &home.path().join(format!("process-{index}")),
                &home.path().join(format!("process-{index}.log")),
                &env,
            )
        })
        .collect();
    // One of them exits, naming the lock; the other serves.
    let started = Instant::now();
    let loser = loop {
        if let Some(index) = launches
            .iter_mut()
            .position(|launch| matches!(launch.process.try_wait(), Ok(Some(_))))
        {
            break index;
        }
        assert!(started.elapsed() < START_WAIT, "neither process stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let status = launches[loser]
        .process
        .try_wait()
        .expect("status")
        .expect("exited");
    assert!(!status.success());
    let loser_log = without_ansi(&read_log(&launches[loser].log_path));
    assert!(
        loser_log.contains("another ledger process is the writer"),
        "the process that did not become the writer says why:\n{loser_log}"
    );
    let winner = launches.remove(1 - loser);
    let server = winner.ready().await;
    let head = get_head(&server.channel).await;
    assert_eq!(head.position, 0, "a new ledger");
    server.stop().await;
}

#[test]
fn config_print_shows_the_store_and_masks_the_connections_password() {
    let output = voucher_ledger(&["config", "print", "--demo"])
        .env_remove("VOUCHER_LEDGER__POSTGRES_STANDBY")
        .env("VOUCHER_LEDGER__STORE", "postgres")
        .env(
            "VOUCHER_LEDGER__POSTGRES_CONNECTION",
            "host=db.example user=ledger password=hunter2 dbname=ledger",
        )
        .output()
        .expect("voucher-ledger runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("store = \"postgres\""), "{stdout}");
    assert!(
        stdout.contains("host=db.example user=ledger password=<masked> dbname=ledger"),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");

    // A standby needs PostgreSQL; an unknown store is refused with the choices.
    let output = voucher_ledger(&["config", "print", "--demo", "--standby"])
        .env_remove("VOUCHER_LEDGER__STORE")
        .env_remove("VOUCHER_LEDGER__POSTGRES_CONNECTION")
        .output()
        .expect("voucher-ledger runs");
    assert!(!output.status.success());
    // advertise_address: host:port; anything else is refused naming the setting.
    let output = voucher_ledger(&["config", "print", "--demo"])
        .env("VOUCHER_LEDGER__ADVERTISE_ADDRESS", "ledger.example:50051")
        .output()
        .expect("voucher-ledger runs");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout)
        .contains("advertise_address = \"ledger.example:50051\""));
    for bad in ["ledger.example", "ledger example:50051", "ledger.example:0"] {
        let output = voucher_ledger(&["config", "print", "--demo"])
            .env("VOUCHER_LEDGER__ADVERTISE_ADDRESS", bad)
            .output()
            .expect("voucher-ledger runs");
        assert!(!output.status.success(), "{bad:?} is refused");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("advertise_address"),
            "{bad:?}"
        );
    }
    let output = voucher_ledger(&["config", "print", "--demo"])
        .env("VOUCHER_LEDGER__STORE", "oracle")
        .output()
        .expect("voucher-ledger runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("postgres"));
}

/// A primary and its synchronous standby (`TestCluster::start_synchronous_pair`), each behind
/// a mutex, for the threads that stop them.
async fn synchronous_pair() -> (Arc<Mutex<TestCluster>>, Arc<Mutex<TestCluster>>) {
    let (primary, standby) = tokio::task::spawn_blocking(TestCluster::start_synchronous_pair)
        .await
        .expect("the start does not panic")
        .expect("a primary and its synchronous standby start");
    (Arc::new(Mutex::new(primary)), Arc::new(Mutex::new(standby)))
}

/// Until the standby streams from `primary` as its synchronous standby again.
async fn wait_until_synchronous(primary: &Arc<Mutex<TestCluster>>) {
    let primary = Arc::clone(primary);
    tokio::task::spawn_blocking(move || lock(&primary).wait_until_synchronous())
        .await
        .expect("the wait does not panic")
        .expect("the standby becomes synchronous");
}

fn lock(cluster: &Mutex<TestCluster>) -> std::sync::MutexGuard<'_, TestCluster> {
    cluster
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn store_env(connection: String) -> Vec<(String, String)> {
    vec![
        ("VOUCHER_LEDGER__STORE".to_owned(), "postgres".to_owned()),
        ("VOUCHER_LEDGER__POSTGRES_CONNECTION".to_owned(), connection),
    ]
}

/// After a writer stopped in a burst: the first write a client gets accepted by the next
/// writer (the retry of an unanswered write, or a new one), then the crash campaign's checks.
async fn first_write_then_checks(
    campaign: &mut Campaign,
    acknowledged: &[(Op, ledger_proto::v1::Receipt)],
    unanswered: &[Op],
) {
    match unanswered.first() {
        Some(op) => match send(&campaign.channel(), &op.write).await {
            Answer::Accepted(_) => {}
            other => panic!("the first retry on the new writer: {other:?}"),
        },
        None => {
            campaign.write_in_turn(1).await;
        }
    }
    campaign.check_after_restart(acknowledged, unanswered).await;
}

/// What a writer logs once it has reconnected to its log after losing its connection.
const RECONNECTED_LINE: &str = "writer reconnected to the event log; serving again";

/// The callers under load until each has a write answered with something other than a
/// receipt (the writer lost its log: UNAVAILABLE), the server left running; then what
/// `Campaign::burst` records of a burst. `Campaign::burst` waits for the server to stop, which
/// a writer that reconnects does not.
async fn burst_until_every_caller_is_refused(
    campaign: &mut Campaign,
) -> (Vec<(Op, ledger_proto::v1::Receipt)>, Vec<Op>) {
    let channel = campaign.channel();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = std::mem::take(&mut campaign.callers)
        .into_iter()
        .map(|caller| {
            tokio::spawn(drive(
                caller,
                channel.clone(),
                campaign.dates.clone(),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let mut acknowledged = Vec::new();
    let mut unanswered = Vec::new();
    for task in tasks {
        let burst = tokio::time::timeout(CALL_WAIT * 2, task)
            .await
            .expect("every caller meets the lost log")
            .expect("a caller does not panic");
        acknowledged.extend(burst.acknowledged);
        unanswered.extend(burst.unanswered);
        campaign.callers.push(burst.caller);
    }
    campaign.callers.sort_by_key(|caller| caller.index);
    campaign.touched.clear();
    for (op, receipt) in &acknowledged {
        campaign.model.accept(op, Placed::of(receipt));
        campaign.touched.insert(op.company.clone());
        campaign.stats.requests_acknowledged += 1;
        campaign.stats.events_acknowledged += u64::from(receipt.event_count);
    }
    for op in &unanswered {
        campaign.touched.insert(op.company.clone());
    }
    (acknowledged, unanswered)
}

/// Sends `op` until it is accepted (a receipt, replayed or not), as a client retrying with
/// the same request id does while the ledger reconnects; refusals fail the test.
async fn retry_until_accepted(channel: &tonic::transport::Channel, op: &Op) {
    let started = Instant::now();
    loop {
        match tokio::time::timeout(CALL_WAIT, call(channel, &op.write)).await {
            Ok(Ok(_receipt)) => return,
            Ok(Err(status)) => {
                assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
                assert_eq!(
                    status.get_details_error_info().map(|info| info.reason),
                    Some("LEDGER_UNAVAILABLE".to_owned()),
                    "{status:?}"
                );
            }
            Err(_) => panic!("a retry got no answer in time"),
        }
        assert!(
            started.elapsed() < START_WAIT,
            "the ledger did not accept a write again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_stopped_under_load_and_its_synchronous_standby_promoted_loses_nothing() {
    let test = "the_primary_stopped_under_load_and_its_synchronous_standby_promoted_loses_nothing";
    if binaries().is_none() {
        eprintln!("SKIPPED {test}: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
        return;
    }
    let _serial = SERIAL.lock().await;
    let (primary, standby) = synchronous_pair().await;
    // Both hosts: libpq's way (and Patroni's, pg_auto_failover's) to follow the primary.
    let connection = format!(
        "host=127.0.0.1,127.0.0.1 port={},{} user=postgres dbname=postgres target_session_attrs=read-write",
        lock(&primary).port,
        lock(&standby).port
    );
    let pg_env = store_env(connection.clone());
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-promote-")
        .tempdir()
        .expect("a temporary folder");
    let seed = seed_from_env();
    println!("postgres promotion: seed {seed}");
    let mut campaign = pg_campaign(home.path(), seed, &pg_env).await;

    // Under the load of eight callers, the primary stops as a crash would: the ledger's next
    // commit fails, its outcome unknown; the ledger answers UNAVAILABLE from then on, and
    // tries to reconnect.
    let delay = campaign
        .rng
        .duration_between(Duration::from_millis(300), Duration::from_millis(1200));
    let stopper = {
        let primary = Arc::clone(&primary);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            let stopped = Instant::now();
            lock(&primary)
                .stop_immediately()
                .expect("the primary stops");
            stopped
        })
    };
    let (acknowledged, unanswered) = burst_until_every_caller_is_refused(&mut campaign).await;
    let stopped = stopper.join().expect("the stopping thread does not panic");
    assert_eq!(
        unanswered.len(),
        CALLERS as usize,
        "every caller met the lost log"
    );

    // The synchronous standby is promoted; the ledger, still running, finds it.
    {
        let standby = Arc::clone(&standby);
        tokio::task::spawn_blocking(move || {
            let standby = lock(&standby);
            standby.promote()?;
            // Its settings came with the base backup and name a synchronous standby it does
            // not have: lifted, as a failover manager does until a new standby streams (or
            // the new primary's commits would wait for ever).
            standby.query("ALTER SYSTEM SET synchronous_standby_names = ''")?;
            standby.query("SELECT pg_reload_conf()")
        })
        .await
        .expect("the promotion does not panic")
        .expect("the standby is promoted");
    }
    let promoted_at = Instant::now();
    let promoted = stopped.elapsed();
    // What a client sees: its retry of an unanswered write, with the same request id,
    // refused UNAVAILABLE until the ledger has reconnected, then accepted.
    retry_until_accepted(&campaign.channel(), &unanswered[0]).await;
    let first_write = stopped.elapsed();
    let first_write_after_promotion = promoted_at.elapsed();
    let server = campaign.server.as_mut().expect("the ledger runs");
    assert!(
        matches!(server.process().try_wait(), Ok(None)),
        "the ledger was not restarted: the same process serves"
    );
    let writer_log = without_ansi(&read_log(&server.log_path));
    assert!(
        // The loss is met by a commit (its outcome unknown) or by a read of the group being
        // decided, whichever comes first.
        writer_log.contains("answering unavailable until") && writer_log.contains(RECONNECTED_LINE),
        "the ledger says it lost its log, then that it reconnected:\n{}",
        log_tail(&server.log_path)
    );
    campaign
        .check_after_restart(&acknowledged, &unanswered)
        .await;

    let events = check_the_log_end_to_end(&mut campaign, home.path(), &pg_env, &connection).await;
    println!(
        "postgres promotion: {} acknowledged in the burst, {} unanswered ({} found in the log, {} not); {} requests acknowledged in all, {events} events, 0 lost, 0 duplicated; {} retries replayed",
        acknowledged.len(),
        unanswered.len(),
        campaign.stats.unanswered_found_in_log,
        campaign.stats.unanswered_not_in_log,
        campaign.model.accepted.len(),
        campaign.stats.retries_replayed
    );
    println!("postgres promotion times: primary stopped -> standby promoted {promoted:.0?}, first accepted write {first_write:.0?} (promotion -> first accepted write {first_write_after_promotion:.0?}), the ledger not restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_whose_connection_is_cut_reconnects_and_names_the_advertised_writer() {
    let Some(cluster) = cluster_or_skip(
        "a_standby_whose_connection_is_cut_reconnects_and_names_the_advertised_writer",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    // The writer advertises the address its clients use, not the one it is bound to.
    let advertised = "ledger-writer.example:50051";
    let mut pg_env = postgres_env(&cluster);
    pg_env.push((
        "VOUCHER_LEDGER__ADVERTISE_ADDRESS".to_owned(),
        advertised.to_owned(),
    ));
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-standby-cut-")
        .tempdir()
        .expect("a temporary folder");
    let mut campaign = pg_campaign(home.path(), seed_from_env(), &pg_env).await;
    campaign.write_in_turn(6).await;
    // The standby's connections carry a name of their own, for the cut to find them.
    let standby_env = vec![
        ("VOUCHER_LEDGER__STORE".to_owned(), "postgres".to_owned()),
        (
            "VOUCHER_LEDGER__POSTGRES_CONNECTION".to_owned(),
            format!("{} application_name=ledger-standby", cluster.connection()),
        ),
        (
            "VOUCHER_LEDGER__POSTGRES_STANDBY".to_owned(),
            "true".to_owned(),
        ),
    ];
    let env = campaign.start_env(&standby_env);
    let standby_log = home.path().join("standby.log");
    let standby = Launch::spawn(&home.path().join("standby"), &standby_log, &env)
        .ready()
        .await;
    wait_for_head(
        &standby.channel,
        get_head(&campaign.channel()).await.position,
    )
    .await;

    // A write sent to it names the advertised address (once it has read it, at a poll).
    let op = campaign.callers[0].next_op(&campaign.dates);
    let started = Instant::now();
    let named = loop {
        let refused = call(&standby.channel, &op.write)
            .await
            .expect_err("a standby refuses a write");
        let info = refused
            .get_details_error_info()
            .expect("the refusal carries an ErrorInfo");
        assert_eq!(info.reason, "NOT_THE_WRITER");
        if let Some(writer) = info.metadata.get("writer") {
            break writer.clone();
        }
        assert!(
            started.elapsed() < START_WAIT,
            "the standby never named the writer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        named, advertised,
        "the writer's advertise_address, not its bound address"
    );

    // Its connections cut by the server: it connects again and follows what the writer
    // writes after the cut, without a restart.
    // (The blocking client drives a runtime of its own: not on this test's workers.)
    let terminated = tokio::task::block_in_place(|| {
        cluster.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'ledger-standby'",
        )
    })
    .expect("the server answers");
    assert!(
        !terminated.is_empty(),
        "the standby's connections were found and cut"
    );
    campaign.write_in_turn(6).await;
    let writer_head = get_head(&campaign.channel()).await;
    wait_for_head(&standby.channel, writer_head.position).await;
    assert_eq!(
        get_head(&standby.channel).await,
        writer_head,
        "hash included"
    );
    let wallets: Vec<String> = campaign.model.companies.keys().cloned().collect();
    assert_eq!(
        reports(&campaign.channel(), &campaign.dates, &wallets).await,
        reports(&standby.channel, &campaign.dates, &wallets).await,
        "the standby reports what the writer does after the cut"
    );

    standby.stop().await;
    campaign
        .server
        .take()
        .expect("a running writer")
        .stop()
        .await;
    let standby_log = without_ansi(&read_log(&standby_log));
    assert!(
        standby_log.contains("reading connection to postgresql made again"),
        "the standby says it connected again:\n{standby_log}"
    );
    assert!(
        !standby_log.contains(TAKEOVER_LINE),
        "the standby never took over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_during_commit_stops_the_ledger_and_retries_resolve_the_outcome() {
    let test = "a_connection_cut_during_commit_stops_the_ledger_and_retries_resolve_the_outcome";
    if binaries().is_none() {
        eprintln!("SKIPPED {test}: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
        return;
    }
    let _serial = SERIAL.lock().await;
    let (primary, standby) = synchronous_pair().await;
    let connection = lock(&primary).connection();
    let mut pg_env = store_env(connection.clone());
    // No reconnection: the process stops on the unknown outcome, as a failed fdatasync stops
    // a sled ledger (the promotion test has the ledger reconnect instead).
    pg_env.push((
        "VOUCHER_LEDGER__POSTGRES_RECONNECT_DEADLINE_SECONDS".to_owned(),
        "0".to_owned(),
    ));
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-cut-")
        .tempdir()
        .expect("a temporary folder");
    let seed = seed_from_env();
    println!("postgres cut mid-commit: seed {seed}");
    let mut campaign = pg_campaign(home.path(), seed, &pg_env).await;

    // Under load, the synchronous standby stops: the primary commits each group locally and
    // then waits for the standby, so the ledger's COMMIT waits unanswered. Then the ledger's
    // connection is cut during that wait: a group committed, whose answer never came.
    let delay = campaign
        .rng
        .duration_between(Duration::from_millis(300), Duration::from_millis(1200));
    let cutter = {
        let primary = Arc::clone(&primary);
        let standby = Arc::clone(&standby);
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            lock(&standby)
                .stop_immediately()
                .expect("the standby stops");
            let started = Instant::now();
            loop {
                let waiting = lock(&primary)
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = 'voucher-ledger' AND wait_event = 'SyncRep'",
                    )
                    .expect("the primary answers");
                if !waiting.is_empty() {
                    return waiting.len();
                }
                assert!(
                    started.elapsed() < START_WAIT,
                    "the ledger's commit never waited for the standby"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let (acknowledged, unanswered, status) = campaign
        .burst(Ending::ServerStops(Duration::from_secs(60)))
        .await;
    let cut = cutter.join().expect("the cutting thread does not panic");
    assert_eq!(cut, 1, "one connection, the writer's, waited in COMMIT");
    assert!(
        !status.success(),
        "the ledger stopped on the commit's unknown outcome"
    );
    let writer_log = without_ansi(&read_log(
        &campaign
            .logs_dir
            .join(format!("server-{}.log", campaign.starts)),
    ));
    assert!(
        writer_log.contains("outcome unknown"),
        "the ledger says the commit's outcome is unknown:\n{}",
        log_tail(
            &campaign
                .logs_dir
                .join(format!("server-{}.log", campaign.starts))
        )
    );

    // The standby back, the ledger started again: the retries resolve each unanswered write,
    // as a replay where the cut commit had made it.
    {
        let standby = Arc::clone(&standby);
        tokio::task::spawn_blocking(move || lock(&standby).restart())
            .await
            .expect("the restart does not panic")
            .expect("the standby starts again");
    }
    wait_until_synchronous(&primary).await;
    campaign.start_server(&pg_env).await;
    first_write_then_checks(&mut campaign, &acknowledged, &unanswered).await;
    assert!(
        campaign.stats.unanswered_found_in_log >= 1,
        "the group whose COMMIT was cut is in the log, and its retries answered replayed"
    );

    let events = check_the_log_end_to_end(&mut campaign, home.path(), &pg_env, &connection).await;
    println!(
        "postgres cut mid-commit: {} acknowledged in the burst, {} unanswered ({} found in the log, retried as replays; {} not, written once); {} requests acknowledged in all, {events} events, 0 lost, 0 duplicated; {} retries replayed",
        acknowledged.len(),
        unanswered.len(),
        campaign.stats.unanswered_found_in_log,
        campaign.stats.unanswered_not_in_log,
        campaign.model.accepted.len(),
        campaign.stats.retries_replayed
    );
}

/// Runs `import` (its whole command line): it succeeds with the copy's head equal to `head`;
/// the same import again is refused (exit status 1), the target not being empty; then `verify`
/// with `verify_target` (where the copy is) finds it sound at `audit_head`.
fn import_and_verify(
    import: &[&str],
    head: &ledger_proto::v1::Head,
    verify_target: &[&str],
    audit_head: &str,
) {
    let (status, stdout, stderr) = offline(import);
    assert!(
        status.success()
            && stdout.contains(&format!("position {}, hash {}", head.position, head.hash)),
        "{import:?} ({status}):\n{stdout}\n{stderr}"
    );
    let (status, _, stderr) = offline(import);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("already holds a ledger"),
        "a target that is not empty is refused:\n{stderr}"
    );
    let mut verify = vec!["verify"];
    verify.extend_from_slice(verify_target);
    verify.extend_from_slice(&["--expect-head", audit_head]);
    let (status, stdout, stderr) = offline(&verify);
    assert!(
        status.success() && stdout.contains("sound"),
        "verify of the copy ({status}):\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_moves_a_sled_ledger_into_an_empty_postgresql_database_and_back() {
    let Some(cluster) =
        cluster_or_skip("import_moves_a_sled_ledger_into_an_empty_postgresql_database_and_back")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-import-")
        .tempdir()
        .expect("a temporary folder");
    let sled_dir = home.path().join("sled");
    let mut campaign = Campaign::start(&sled_dir, home.path(), seed_from_env()).await;
    campaign.write_in_turn(40).await;
    let wallets: Vec<String> = campaign.model.companies.keys().cloned().collect();
    let on_sled = reports(&campaign.channel(), &campaign.dates, &wallets).await;
    let sled_head = get_head(&campaign.channel()).await;
    campaign.audit.catch_up(&campaign.channel()).await;
    campaign
        .server
        .take()
        .expect("a running server")
        .stop()
        .await;
    let connection = cluster.connection();
    let sled = sled_dir.to_string_lossy().into_owned();

    // sled -> PostgreSQL: the same log, hash for hash; a second import is refused.
    let verify_dir = home.path().join("verify").to_string_lossy().into_owned();
    import_and_verify(
        &["import", "--data", &sled, "--to-postgres", &connection],
        &sled_head,
        &["--data", &verify_dir, "--postgres", &connection],
        &campaign.audit.head(),
    );

    // A ledger served from PostgreSQL: the same head and reports, and it writes on.
    campaign.data_dir = home.path().join("on-postgres");
    campaign.start_server(&postgres_env(&cluster)).await;
    assert_eq!(get_head(&campaign.channel()).await, sled_head);
    assert_eq!(
        reports(&campaign.channel(), &campaign.dates, &wallets).await,
        on_sled,
        "the reports of the imported ledger"
    );
    campaign.write_in_turn(8).await;
    let wallets: Vec<String> = campaign.model.companies.keys().cloned().collect();
    let on_postgres = reports(&campaign.channel(), &campaign.dates, &wallets).await;
    check_reports(&on_postgres, &campaign.model);
    let postgres_head = get_head(&campaign.channel()).await;
    campaign.audit.catch_up(&campaign.channel()).await;
    campaign
        .server
        .take()
        .expect("a running server")
        .stop()
        .await;

    // PostgreSQL -> sled, into a new folder; a second import into it is refused.
    let back_dir = home.path().join("back");
    let back = back_dir.to_string_lossy().into_owned();
    import_and_verify(
        &["import", "--postgres", &connection, "--to-data", &back],
        &postgres_head,
        &["--data", &back],
        &campaign.audit.head(),
    );
    campaign.data_dir = back_dir;
    campaign.start_server(&[]).await;
    assert_eq!(get_head(&campaign.channel()).await, postgres_head);
    assert_eq!(
        reports(&campaign.channel(), &campaign.dates, &wallets).await,
        on_postgres,
        "the reports of the ledger moved back to sled"
    );
    campaign
        .server
        .take()
        .expect("a running server")
        .stop()
        .await;

    // Without a target, or with two sources: the command line is refused.
    let (status, _, stderr) = offline(&["import", "--data", &sled]);
    assert_eq!(status.code(), Some(2), "{stderr}");
}

/// What a reconnecting writer logs each time it finds the writer's lock held.
const LOCK_HELD_LINE: &str = "the writer's lock is held by another process";

/// What it logs when the lock is still held at its reconnect deadline, before it stops.
const LOCK_HELD_AT_DEADLINE_LINE: &str =
    "the writer's lock was still held by another process at the reconnect deadline";

/// Cuts the connections named `application_name`, then takes the writer's lock as a standby
/// taking over would (the lock and a new epoch), once the server has let the cut session's
/// lock go. The lock is held until the returned log is dropped.
async fn cut_and_take_the_writers_lock(
    cluster: &TestCluster,
    application_name: &str,
) -> ledger_store_pg::PgLog {
    // The blocking client drives a runtime of its own: not on this test's workers.
    tokio::task::block_in_place(|| {
        let terminated = cluster
            .query(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = '{application_name}'"
            ))
            .expect("the server answers");
        assert!(!terminated.is_empty(), "the writer's connections were cut");
        let mut lock =
            ledger_store_pg::WriterLock::connect(&cluster.connection()).expect("the test connects");
        let started = Instant::now();
        loop {
            if let Some(log) = lock.try_take().expect("the lock can be asked for") {
                return log;
            }
            assert!(
                started.elapsed() < START_WAIT,
                "the cut session's lock was never let go"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    })
}

/// The first write after the cut: `UNAVAILABLE` / `LEDGER_UNAVAILABLE` (the writer lost its
/// connection, and cannot have the lock back).
async fn refused_unavailable(channel: &tonic::transport::Channel, op: &Op) {
    let status = tokio::time::timeout(CALL_WAIT, call(channel, &op.write))
        .await
        .expect("an answer in time")
        .expect_err("no write is accepted while another process holds the lock");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert_eq!(
        status.get_details_error_info().map(|info| info.reason),
        Some("LEDGER_UNAVAILABLE".to_owned()),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_writer_that_finds_the_lock_taken_retries_until_its_deadline() {
    let Some(cluster) = cluster_or_skip(
        "a_reconnecting_writer_that_finds_the_lock_taken_retries_until_its_deadline",
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-lock-taken-")
        .tempdir()
        .expect("a temporary folder");
    // The writer's connections carry a name of their own, for the cut to find them.
    let with_deadline = |seconds: &str| {
        vec![
            ("VOUCHER_LEDGER__STORE".to_owned(), "postgres".to_owned()),
            (
                "VOUCHER_LEDGER__POSTGRES_CONNECTION".to_owned(),
                format!("{} application_name=ledger-writer", cluster.connection()),
            ),
            (
                "VOUCHER_LEDGER__POSTGRES_RECONNECT_DEADLINE_SECONDS".to_owned(),
                seconds.to_owned(),
            ),
        ]
    };
    let mut campaign = pg_campaign(home.path(), seed_from_env(), &with_deadline("60")).await;
    campaign.write_in_turn(4).await;

    // Before its deadline: the lock let go, the writer has it back and writes on.
    let held = cut_and_take_the_writers_lock(&cluster, "ledger-writer").await;
    let op = campaign.callers[0].next_op(&campaign.dates);
    refused_unavailable(&campaign.channel(), &op).await;
    let log_path = campaign
        .server
        .as_ref()
        .expect("a running writer")
        .log_path
        .clone();
    // Found the lock held at least twice: it retries instead of stopping at once.
    let started = Instant::now();
    while without_ansi(&read_log(&log_path))
        .matches(LOCK_HELD_LINE)
        .count()
        < 2
    {
        assert!(
            started.elapsed() < START_WAIT,
            "the writer never found the lock held twice; its stderr:\n{}",
            log_tail(&log_path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server = campaign.server.as_mut().expect("a running writer");
    assert!(
        matches!(server.process().try_wait(), Ok(None)),
        "the writer still runs while the lock is held"
    );
    refused_unavailable(&campaign.channel(), &op).await;
    tokio::task::block_in_place(|| drop(held));
    wait_for_log(&log_path, RECONNECTED_LINE).await;
    retry_until_accepted(&campaign.channel(), &op).await;
    campaign
        .server
        .take()
        .expect("a running writer")
        .stop()
        .await;

    // Past its deadline: a clear line, and the process stops.
    campaign.start_server(&with_deadline("2")).await;
    let held = cut_and_take_the_writers_lock(&cluster, "ledger-writer").await;
    let op = campaign.callers[1].next_op(&campaign.dates);
    refused_unavailable(&campaign.channel(), &op).await;
    let mut server = campaign.server.take().expect("a running writer");
    let status = wait_for_exit(server.process(), START_WAIT).await;
    assert!(
        status.is_some_and(|status| !status.success()),
        "the writer stops at its deadline ({status:?}); its stderr:\n{}",
        log_tail(&server.log_path)
    );
    let log = without_ansi(&read_log(&server.log_path));
    assert!(
        log.contains(LOCK_HELD_LINE) && log.contains(LOCK_HELD_AT_DEADLINE_LINE),
        "the writer says why it stopped:\n{}",
        log_tail(&server.log_path)
    );
    tokio::task::block_in_place(|| drop(held));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_compares_on_postgresql_and_backup_points_at_the_databases_tools() {
    let Some(cluster) =
        cluster_or_skip("rebuild_compares_on_postgresql_and_backup_points_at_the_databases_tools")
    else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let home = tempfile::Builder::new()
        .prefix("voucher-ledger-pg-rebuild-")
        .tempdir()
        .expect("a temporary folder");
    let pg_env = postgres_env(&cluster);
    let mut campaign = pg_campaign(home.path(), seed_from_env(), &pg_env).await;
    campaign.write_in_turn(8).await;

    // Backup: refused with the database's tools named, and nothing written.
    let target = home.path().join("backup");
    let status =
        ledger_proto::v1::audit_service_client::AuditServiceClient::new(campaign.channel())
            .backup(with_token(
                ledger_proto::v1::BackupRequest {
                    target_dir: target.display().to_string(),
                },
                AUDITOR,
            ))
            .await
            .expect_err("a ledger on postgresql takes no backup of its own");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        status.get_details_error_info().map(|info| info.reason),
        Some("BACKUP_BY_THE_DATABASE".to_owned())
    );
    assert!(status.message().contains("pg_basebackup"), "{status:?}");
    assert!(!target.exists(), "nothing written");

    // rebuild while a writer serves: refused, naming the writer's lock.
    let data = campaign.data_dir.display().to_string();
    let connection = cluster.connection();
    let rebuild = ["rebuild", "--data", &data, "--postgres", &connection];
    let (status, _, stderr) = offline(&rebuild);
    assert!(!status.success(), "refused while a writer serves");
    assert!(stderr.contains("writer's lock"), "{stderr}");

    // Stopped: the rebuild from position 1 equals the checkpoint the writer left at its head.
    let head = get_head(&campaign.channel()).await;
    campaign
        .server
        .take()
        .expect("a running writer")
        .stop()
        .await;
    let (status, stdout, stderr) = offline(&rebuild);
    assert!(status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "checkpoint at position {}: identical to the rebuild",
            head.position
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("rebuilt {} events from position 1", head.position)),
        "{stdout}"
    );
    // The ledger starts on the checkpoint the rebuild wrote, at the same head.
    campaign.start_server(&pg_env).await;
    assert_eq!(get_head(&campaign.channel()).await, head);
    campaign
        .server
        .take()
        .expect("a running writer")
        .stop()
        .await;
}

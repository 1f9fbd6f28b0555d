//! The PostgreSQL store against a real server that each test starts (see `cluster`): group
//! commit, the same bytes and chain as sled, restarts, fencing of writers. Skipped, saying so,
//! where no PostgreSQL binaries are installed.

use std::sync::{Arc, Barrier};

use ledger_proto::event::v1::{event::Payload, BudgetOpened};
use ledger_store::{
    GroupWrite, Head, LogBackend, NewCommand, NewEvent, OfflineLog, Store, StoreError,
    StoreOptions, StoredEntry,
};
use ledger_store_pg::cluster::{binaries, TestCluster};
use ledger_store_pg::{PgError, PgLog, WhenLocked};
use uuid::Uuid;

/// A running cluster, or `None` (after saying so) where PostgreSQL is not installed.
fn cluster_or_skip(test: &str) -> Option<TestCluster> {
    if binaries().is_none() {
        eprintln!("SKIPPED {test}: no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
        return None;
    }
    Some(TestCluster::start("").expect("a test cluster starts"))
}

fn uuid(seed: u128) -> Uuid {
    Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | seed)
}

fn command(request_seed: u128, streams: &[&str], named: Option<Uuid>) -> NewCommand {
    let request_id = uuid(request_seed);
    NewCommand {
        request_id,
        request_digest: [request_seed as u8; 32],
        recorded_at: "2025-09-30T10:15:00Z".to_owned(),
        events: streams
            .iter()
            .enumerate()
            .map(|(index, stream)| NewEvent {
                stream: (*stream).to_owned(),
                event_id: uuid(0x1_0000 + request_seed * 100 + index as u128),
                request_id,
                principal: "administration".to_owned(),
                recorded_at: "2025-09-30T10:15:00Z".to_owned(),
                business_date: "2025-09-30".to_owned(),
                payload: Payload::BudgetOpened(BudgetOpened {
                    year: 2025,
                    allocated_eur: format!("{request_seed}.{index:02}"),
                }),
                names: named,
            })
            .collect(),
    }
}

/// Three groups: two commands, one with two events and a name; one command without events; one
/// more on a stream already written.
fn groups() -> Vec<Vec<NewCommand>> {
    vec![
        vec![
            command(1, &["budget/2025", "provider/AG-0012"], Some(uuid(77))),
            command(2, &["budget/2025"], None),
        ],
        vec![command(3, &[], None)],
        vec![command(4, &["provider/AG-0012"], Some(uuid(77)))],
    ]
}

fn open_pg_store(connection: &str, checkpoint_dir: &std::path::Path) -> Store {
    let backend = PgLog::open_writer(connection, WhenLocked::Fail)
        .expect("the writer connects")
        .into_backend();
    Store::open_backend(backend, checkpoint_dir, StoreOptions::default()).expect("the log opens")
}

#[test]
fn groups_are_written_with_the_same_bytes_and_chain_as_sled() {
    let Some(cluster) = cluster_or_skip("groups_are_written_with_the_same_bytes_and_chain_as_sled")
    else {
        return;
    };
    let folders = tempfile::tempdir().expect("temporary folder");
    let mut pg_store = open_pg_store(&cluster.connection(), &folders.path().join("pg"));
    let mut sled_store = Store::open(&folders.path().join("sled")).expect("sled opens");
    for group in groups() {
        let written_pg = pg_store.append(group.clone()).expect("pg append");
        let written_sled = sled_store.append(group).expect("sled append");
        assert_eq!(
            written_pg, written_sled,
            "the same events, positions and hashes"
        );
    }
    assert_eq!(pg_store.head(), sled_store.head());
    assert_eq!(pg_store.head().position, 4);
    let pg_events: Vec<_> = pg_store
        .read_all()
        .collect::<Result<_, _>>()
        .expect("the pg log reads back on the chain");
    let sled_events: Vec<_> = sled_store
        .read_all()
        .collect::<Result<_, _>>()
        .expect("sled");
    assert_eq!(pg_events, sled_events, "byte for byte");
    assert_eq!(pg_store.verify().expect("verify"), Ok(pg_store.head()));

    // Request records, the empty command's included, the stream versions and the index.
    let record = pg_store.request(uuid(3)).expect("read").expect("recorded");
    assert_eq!((record.first_position, record.event_count), (4, 0));
    assert_eq!(pg_store.request(uuid(99)).expect("read"), None);
    assert_eq!(pg_store.stream_version("provider/AG-0012").expect("v"), 2);
    assert_eq!(
        pg_store.positions_naming(uuid(77)).expect("index"),
        vec![1, 2, 4]
    );
    assert_eq!(
        pg_store.reader().read_at(3).expect("read at 3"),
        sled_store.reader().read_at(3).expect("sled read at 3")
    );
    // A request id is used once.
    assert!(matches!(
        pg_store.append(vec![command(2, &["budget/2025"], None)]),
        Err(StoreError::RequestAlreadyRecorded { .. })
    ));
}

#[test]
fn a_restart_reopens_the_log_and_goes_on_from_its_head() {
    let Some(cluster) = cluster_or_skip("a_restart_reopens_the_log_and_goes_on_from_its_head")
    else {
        return;
    };
    let folder = tempfile::tempdir().expect("temporary folder");
    let head_before = {
        let mut store = open_pg_store(&cluster.connection(), folder.path());
        for group in groups() {
            store.append(group).expect("append");
        }
        store.head()
    };
    // The first process's connections are gone, and its lock with them.
    let mut store = open_pg_store(&cluster.connection(), folder.path());
    assert_eq!(store.head(), head_before);
    assert_eq!(store.stream_version("budget/2025").expect("v"), 2);
    assert!(store.request(uuid(1)).expect("read").is_some());
    let next = store
        .append(vec![command(5, &["budget/2025"], None)])
        .expect("append after the restart");
    assert_eq!(next[0][0].position, head_before.position + 1);
    assert_eq!(next[0][0].prev_hash, head_before.hash);
    assert_eq!(next[0][0].event.stream_version, 3);

    // The offline view (verify, export) walks the same chain and finds the head.
    let offline = OfflineLog::open_backend(
        PgLog::open_reader(&cluster.connection())
            .expect("a reader connects")
            .into_backend(),
        folder.path(),
    );
    assert_eq!(offline.verify().expect("verify"), Ok(store.head()));
    assert_eq!(offline.requests().count(), 5);
}

#[test]
fn two_writers_started_at_once_exactly_one_writes() {
    let Some(cluster) = cluster_or_skip("two_writers_started_at_once_exactly_one_writes") else {
        return;
    };
    let connection = Arc::new(cluster.connection());
    let start = Arc::new(Barrier::new(2));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let connection = Arc::clone(&connection);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                PgLog::open_writer(&connection, WhenLocked::Fail)
            })
        })
        .collect();
    let results: Vec<_> = writers
        .into_iter()
        .map(|writer| writer.join().expect("thread"))
        .collect();
    let winners: Vec<_> = results.iter().filter(|result| result.is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one writer: {results:?}");
    assert!(
        results
            .iter()
            .any(|result| matches!(result, Err(PgError::WriterLockHeld { .. }))),
        "the other is told another process writes: {results:?}"
    );
    let folder = tempfile::tempdir().expect("temporary folder");
    let winner = results
        .into_iter()
        .find_map(Result::ok)
        .expect("one writer");
    let mut store = Store::open_backend(
        winner.into_backend(),
        folder.path(),
        StoreOptions::default(),
    )
    .expect("open");
    store
        .append(vec![command(1, &["budget/2025"], None)])
        .expect("the writer appends");
    // A third one started now is refused as long as the writer lives.
    assert!(matches!(
        PgLog::open_writer(&connection, WhenLocked::Fail),
        Err(PgError::WriterLockHeld { .. })
    ));
}

/// A group of one event written straight through the backend, as the committer does, so that
/// a refusal is seen (the engine's committer stops the process on it).
fn one_event_group(backend: &PgLog, stream: &str) -> GroupWrite {
    let previous_head = backend.stored_head().expect("head").unwrap_or(Head::EMPTY);
    let position = previous_head.position + 1;
    let event_bytes = vec![position as u8; 8];
    let hash = ledger_store::chain_hash(&previous_head.hash, position, &event_bytes);
    let request_id = uuid(1000 + u128::from(position));
    GroupWrite {
        previous_head,
        head: Head { position, hash },
        entries: vec![StoredEntry {
            position,
            hash,
            stream: stream.to_owned(),
            stream_version: position,
            event_bytes,
        }],
        requests: vec![(
            request_id,
            ledger_proto::event::v1::RequestRecord {
                request_digest: vec![1; 32],
                first_position: position,
                event_count: 1,
                recorded_at: "2025-09-30T10:15:00Z".to_owned(),
            },
        )],
        stream_versions: vec![(stream.to_owned(), position)],
        names: Vec::new(),
    }
}

#[test]
fn a_stale_writer_cannot_append_after_the_epoch_moved_on() {
    let Some(cluster) = cluster_or_skip("a_stale_writer_cannot_append_after_the_epoch_moved_on")
    else {
        return;
    };
    let writer = PgLog::open_writer(&cluster.connection(), WhenLocked::Fail).expect("writer");
    writer
        .commit(&one_event_group(&writer, "budget/2025"))
        .expect("the writer appends");

    // What a new writer does when it takes over: bump the epoch (here without the lock, as a
    // writer would after this one's session was cut off while it still thinks it writes).
    let mut admin =
        postgres::Client::connect(&cluster.connection(), postgres::NoTls).expect("admin connects");
    admin
        .execute("UPDATE ledger_head SET epoch = epoch + 1", &[])
        .expect("epoch bumped");
    let refused = writer.commit(&one_event_group(&writer, "budget/2025"));
    assert!(
        matches!(refused, Err(StoreError::NotTheWriter { .. })),
        "{refused:?}"
    );
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM ledger_log", &[])
        .expect("count")
        .get(0);
    assert_eq!(rows, 1, "the refused group wrote nothing");

    // The compare-and-set on the head too: a group that does not extend the stored head.
    let second = PgLog::open_writer(&cluster.connection(), WhenLocked::Fail);
    assert!(matches!(second, Err(PgError::WriterLockHeld { .. })));
    drop(writer);
    let second = PgLog::open_writer(
        &cluster.connection(),
        WhenLocked::Wait {
            poll_interval: std::time::Duration::from_millis(50),
        },
    )
    .expect("the next writer takes over once the lock is free");
    let mut stale = one_event_group(&second, "budget/2025");
    stale.previous_head = Head::EMPTY;
    assert!(matches!(
        second.commit(&stale),
        Err(StoreError::NotTheWriter { .. })
    ));
    second
        .commit(&one_event_group(&second, "budget/2025"))
        .expect("a group on the head is written");
}

#[test]
fn a_writer_whose_session_was_cut_off_is_fenced_and_replaced() {
    let Some(cluster) =
        cluster_or_skip("a_writer_whose_session_was_cut_off_is_fenced_and_replaced")
    else {
        return;
    };
    let writer = PgLog::open_writer(&cluster.connection(), WhenLocked::Fail).expect("writer");
    let mut admin =
        postgres::Client::connect(&cluster.connection(), postgres::NoTls).expect("admin connects");
    // The writer's session ends (network loss, a failover manager): its lock goes with it.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted",
            &[],
        )
        .expect("the writer's session is ended");
    let next = PgLog::open_writer(
        &cluster.connection(),
        WhenLocked::Wait {
            poll_interval: std::time::Duration::from_millis(50),
        },
    )
    .expect("another process becomes the writer");
    assert!(next.epoch() > writer.epoch());
    assert!(
        writer
            .commit(&one_event_group(&writer, "budget/2025"))
            .is_err(),
        "the old writer appends nothing"
    );
    next.commit(&one_event_group(&next, "budget/2025"))
        .expect("the new writer appends");
}

#[test]
fn a_start_reads_every_recorded_id_once_a_chunk_at_a_time() {
    let Some(cluster) = cluster_or_skip("a_start_reads_every_recorded_id_once_a_chunk_at_a_time")
    else {
        return;
    };
    let folders = tempfile::tempdir().expect("temporary folder");
    let mut store = open_pg_store(&cluster.connection(), folders.path());
    // More than two chunks of the cursor, and a last one that is not full.
    let count = u128::try_from(ledger_store_pg::ID_CURSOR_ROWS_MAX).expect("positive") * 2 + 7;
    store
        .append((1..=count).map(|seed| command(seed, &[], None)).collect())
        .expect("the commands are recorded");
    store
        .append(vec![command(count + 1, &["budget/2025"], Some(uuid(77)))])
        .expect("a named event");
    let reader = PgLog::open_reader(&cluster.connection()).expect("a reader connects");
    let mut requests = std::collections::HashSet::new();
    reader
        .for_each_id(ledger_store::IdKind::Requests, &mut |id| {
            assert!(requests.insert(id), "{id} read twice");
        })
        .expect("the request ids are read");
    assert_eq!(requests.len() as u128, count + 1);
    assert!((1..=count + 1).all(|seed| requests.contains(&uuid(seed))));
    let mut names = Vec::new();
    reader
        .for_each_id(ledger_store::IdKind::Names, &mut |id| names.push(id))
        .expect("the index by name is read");
    assert_eq!(names, vec![uuid(77)]);

    // A start on that log finds a recorded id (and its record) and not another.
    drop(store);
    // The dropped writer's session may hold the lock a moment longer.
    let backend = PgLog::open_writer(
        &cluster.connection(),
        WhenLocked::Wait {
            poll_interval: std::time::Duration::from_millis(10),
        },
    )
    .expect("the writer connects again")
    .into_backend();
    let mut store = Store::open_backend(backend, folders.path(), StoreOptions::default())
        .expect("the log opens");
    store.load_indexes();
    assert!(store.request(uuid(count)).expect("read").is_some());
    assert!(store.request(uuid(count + 2)).expect("read").is_none());
}

//! Memory that follows the live entities, not the history: redemptions are not kept in the
//! state once durable, and are read back from the log when a command names one again.

use ledger_domain::command::ReverseRedemption;
use ledger_domain::{Command, Refusal, VoucherType};
use ledger_engine::{Engine, SubmitError};
use uuid::Uuid;

use crate::support::*;

fn reverse(redemption_id: Uuid) -> Command {
    Command::ReverseRedemption(ReverseRedemption {
        redemption_id,
        provider_id: id("AG-1"),
        reason: "training cancelled".into(),
        reversed_on: date("2025-06-20"),
    })
}

fn redemption_id_of(command: &Command) -> Uuid {
    command.redemption_named().expect("a redemption")
}

async fn refused(engine: &Engine, command: Command) -> Refusal {
    match engine
        .handle()
        .submit(Uuid::new_v4(), provider_principal("AG-1"), command)
        .await
    {
        Err(SubmitError::Refused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn loaded_redemptions(engine: &Engine) -> usize {
    engine
        .handle()
        .read(|view| view.state.redemptions.len())
        .await
        .expect("read")
}

async fn balance(engine: &Engine, company: &ledger_domain::EnterpriseNumber) -> u32 {
    let company = company.clone();
    engine
        .handle()
        .read(move |view| view.state.companies[&company].balance(VoucherType::General))
        .await
        .expect("read")
}

#[tokio::test]
async fn durable_redemptions_leave_the_state_and_are_read_back_to_be_reversed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 100).await;
    let mut redemptions = Vec::new();
    for who in 0..20u8 {
        let command = redeem(&company, "AG-1", "M-1", who, 2, "2025-06-01");
        redemptions.push(command.clone());
        accept(&engine, provider_principal("AG-1"), command).await;
    }
    assert_eq!(
        loaded_redemptions(&engine).await,
        0,
        "none kept once durable"
    );
    assert_eq!(balance(&engine, &company).await, 60);

    // Allowed: a reversal of a redemption the state no longer holds.
    let target = redemption_id_of(&redemptions[7]);
    accept(&engine, provider_principal("AG-1"), reverse(target)).await;
    assert_eq!(balance(&engine, &company).await, 62);
    assert_eq!(loaded_redemptions(&engine).await, 0);
    // Refused: the same redemption twice, and a new redemption under a used id.
    assert_eq!(
        refused(&engine, reverse(target)).await,
        Refusal::RedemptionAlreadyReversed
    );
    let mut reused = redeem(&company, "AG-1", "M-1", 30, 1, "2025-06-01");
    if let Command::RedeemHours(command) = &mut reused {
        command.redemption_id = redemption_id_of(&redemptions[3]);
    }
    assert_eq!(
        refused(&engine, reused).await,
        Refusal::RedemptionAlreadyExists
    );
    assert_eq!(
        refused(&engine, reverse(Uuid::new_v4())).await,
        Refusal::RedemptionNotFound
    );
    let before = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    engine.shutdown().await;

    // After a restart, from the final checkpoint: the same state, and the log still answers.
    let engine = start(dir.path(), &clock);
    let after = engine
        .handle()
        .read(|view| (view.state.clone(), view.projections.clone()))
        .await
        .expect("read");
    assert_eq!(before, after);
    assert_eq!(
        refused(&engine, reverse(target)).await,
        Refusal::RedemptionAlreadyReversed
    );
    accept(
        &engine,
        provider_principal("AG-1"),
        reverse(redemption_id_of(&redemptions[8])),
    )
    .await;
    assert_eq!(balance(&engine, &company).await, 64);
    let head = engine.shutdown().await.expect("head");
    let report = retry_while_locked(|| ledger_engine::rebuild(dir.path()));
    assert_eq!(report.head, head);
    assert_eq!(report.matches_checkpoint, Some(true));
}

#[tokio::test]
async fn a_log_written_before_the_index_by_name_is_indexed_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 100).await;
    let command = redeem(&company, "AG-1", "M-1", 1, 2, "2025-06-01");
    accept(&engine, provider_principal("AG-1"), command.clone()).await;
    engine.shutdown().await;

    // What an older version wrote: no index by name, no marker.
    {
        let db = retry_while_locked(|| sled::open(dir.path()));
        let names: Vec<_> = db
            .scan_prefix(b"n")
            .keys()
            .map(|key| key.expect("key"))
            .collect();
        assert_eq!(names.len(), 1, "one redemption indexed");
        for key in names {
            db.remove(key).expect("removed");
        }
        db.remove(b"N").expect("removed");
        db.flush().expect("flushed");
    }
    {
        let store = retry_while_locked(|| ledger_store::Store::open(dir.path()));
        assert!(!store.names_indexed().expect("readable"));
    }

    let engine = start(dir.path(), &clock);
    accept(
        &engine,
        provider_principal("AG-1"),
        reverse(redemption_id_of(&command)),
    )
    .await;
    assert_eq!(
        refused(&engine, reverse(redemption_id_of(&command))).await,
        Refusal::RedemptionAlreadyReversed
    );
    engine.shutdown().await;
    let store = retry_while_locked(|| ledger_store::Store::open(dir.path()));
    assert!(store.names_indexed().expect("readable"));
}

/// A request record written before the canonical encoding's version 2 holds the digest of the
/// command as serde_json wrote it: a retry across the upgrade still gets its receipt, and
/// another command under that id is still refused.
#[tokio::test]
async fn a_retry_of_a_request_recorded_before_the_digest_upgrade_gets_its_receipt() {
    use ledger_proto::event::v1::RequestRecord;
    use prost::Message;

    let dir = tempfile::tempdir().expect("temp dir");
    let clock = clock("2025-06-30");
    let company = enterprise(4_030_192);
    let engine = start(dir.path(), &clock);
    world(&engine, &company, 0).await;
    let request_id = Uuid::new_v4();
    let command = issue(&company, 10, "2025-03-10");
    let first = engine
        .handle()
        .submit(request_id, OPERATOR, command.clone())
        .await
        .expect("accepted");
    engine.shutdown().await;

    // What the version before wrote: the same record with the serde_json digest.
    {
        let db = retry_while_locked(|| sled::open(dir.path()));
        let mut key = vec![b'r'];
        key.extend_from_slice(request_id.as_bytes());
        let stored = db.get(&key).expect("readable").expect("recorded");
        let mut record = RequestRecord::decode(stored.as_ref()).expect("decodes");
        let legacy = ledger_engine::request_digest_json_v1(&OPERATOR, &command);
        assert_eq!(
            record.request_digest,
            ledger_engine::request_digest(&OPERATOR, &command).to_vec()
        );
        assert_ne!(legacy.to_vec(), record.request_digest, "the formats differ");
        record.request_digest = legacy.to_vec();
        db.insert(&key, record.encode_to_vec()).expect("written");
        db.flush().expect("flushed");
    }

    let engine = start(dir.path(), &clock);
    let retry = engine
        .handle()
        .submit(request_id, OPERATOR, command)
        .await
        .expect("answered from the record");
    assert!(retry.replayed);
    assert_eq!(retry.first_position, first.first_position);
    let other = engine
        .handle()
        .submit(request_id, OPERATOR, issue(&company, 11, "2025-03-10"))
        .await;
    assert!(
        matches!(other, Err(SubmitError::Refused(Refusal::RequestIdReused))),
        "{other:?}"
    );
    engine.shutdown().await;
}

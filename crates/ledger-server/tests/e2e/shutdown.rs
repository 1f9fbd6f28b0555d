//! Graceful stop: on SIGTERM the server answers what is in flight, flushes, and exits with
//! status 0; every write it acknowledged is there after a restart (docs/RULES.md §14: a command is
//! acknowledged only once its events are durable).

use std::collections::BTreeSet;
use std::time::Duration;

use ledger_proto::v1::{subscribe_response, SubscribeRequest};
use tokio::sync::mpsc;
use tonic::Code;
use tonic_types::StatusExt;

use crate::requests::*;
use crate::support::*;

/// Longest wait for a subscription to end once the server is told to stop.
const STREAM_END_WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_write_acknowledged_just_before_sigterm_is_there_after_restart() {
    let mut server = Server::start().await;
    server
        .client(ADMINISTRATION)
        .open_budget(open_budget(2025, "7657000.00"))
        .await
        .expect("budget 2025 opens");
    let head = server.head().await;
    let issued = server
        .client(ADMINISTRATION)
        .approve_provider(approve_provider("AG-0012", "2025-01-01"))
        .await
        .expect("the approval is acknowledged");
    // At once, with nothing in between.
    server.send_sigterm();
    let status = server.wait_for_exit().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.log()
    );

    let server = server.into_stopped().start_again().await;
    let head_after = server.head().await;
    assert_eq!(head_after.position, head.position + 1);
    let receipt = issued.receipt.expect("a receipt");
    assert_eq!(receipt.first_position, head_after.position);
    let statement = server
        .client(AUDITOR)
        .get_statement(get_statement("AG-0012"))
        .await
        .expect("the approved provider is there");
    assert_eq!(statement.name, "Formations AG-0012 SRL");
    let budget = server
        .client(AUDITOR)
        .get_budget(get_budget(2025))
        .await
        .expect("budget 2025 is there");
    assert_eq!(budget.allocated_eur, "7657000.00");
}

/// Writers that keep writing while SIGTERM arrives: every write acknowledged is there after a
/// restart; one refused or cut off may or may not be, but the log holds nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_acknowledged_while_stopping_is_there_after_restart() {
    const WRITERS: usize = 4;
    /// A bound on each writer, should the server never stop serving.
    const WRITES_PER_WRITER_MAX: usize = 2_000;
    let mut server = Server::start().await;
    let administration = server.client(ADMINISTRATION);
    let (acknowledged, mut acknowledgements) = mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let administration = administration.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            // The providers this writer tried to approve, the last one possibly not acknowledged.
            let mut attempted = Vec::new();
            for write in 0..WRITES_PER_WRITER_MAX {
                let provider_id = format!("P-{writer}-{write}");
                attempted.push(provider_id.clone());
                let answer = administration
                    .approve_provider(approve_provider(&provider_id, "2025-01-01"))
                    .await;
                if answer.is_err() {
                    break;
                }
                let _ = acknowledged.send(provider_id);
            }
            attempted
        }));
    }
    drop(acknowledged);
    // Stop while every writer is busy.
    let mut acknowledged_ids = BTreeSet::new();
    for _ in 0..WRITERS * 5 {
        acknowledged_ids.insert(
            acknowledgements
                .recv()
                .await
                .expect("the writers are acknowledged before the stop"),
        );
    }
    server.send_sigterm();
    let mut attempted = Vec::new();
    for writer in writers {
        attempted.extend(writer.await.expect("a writer does not panic"));
    }
    while let Some(provider_id) = acknowledgements.recv().await {
        acknowledged_ids.insert(provider_id);
    }
    let status = server.wait_for_exit().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.log()
    );
    assert!(
        attempted.len() < WRITERS * WRITES_PER_WRITER_MAX,
        "the writers were stopped by the server"
    );

    let server = server.into_stopped().start_again().await;
    let auditor = server.client(AUDITOR);
    let mut present_ids = BTreeSet::new();
    for provider_id in &attempted {
        if auditor
            .get_statement(get_statement(provider_id))
            .await
            .is_ok()
        {
            present_ids.insert(provider_id.clone());
        }
    }
    let missing: Vec<_> = acknowledged_ids.difference(&present_ids).collect();
    assert!(missing.is_empty(), "acknowledged, then lost: {missing:?}");
    // One event per approval, and no other.
    assert_eq!(server.head().await.position, present_ids.len() as u64);
}

/// A live subscription does not hold up a graceful stop: it is ended with UNAVAILABLE /
/// LEDGER_UNAVAILABLE, told where to resume, and the server exits with status 0 (ledger.proto,
/// `Subscribe`; `audit.rs` module doc).
#[tokio::test]
async fn sigterm_ends_a_live_subscription_with_where_to_resume_and_exits_with_status_0() {
    let mut server = Server::start().await;
    server
        .client(ADMINISTRATION)
        .open_budget(open_budget(2025, "1000.00"))
        .await
        .expect("budget 2025 opens");
    let mut subscription = server
        .client(AUDITOR)
        .subscribe(SubscribeRequest::default())
        .await
        .expect("an auditor subscribes");
    let first = subscription
        .message()
        .await
        .expect("the subscription answers")
        .expect("the subscription sends the event already in the log");
    match first.message {
        Some(subscribe_response::Message::Event(event)) => {
            assert_eq!(event.event.map(|event| event.position), Some(1));
        }
        other => panic!("expected the event at position 1, got {other:?}"),
    }

    server.send_sigterm();
    let ended = tokio::time::timeout(STREAM_END_WAIT, async {
        loop {
            match subscription.message().await {
                // A heartbeat may still come before the end.
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the subscription ended without a status"),
                Err(status) => return status,
            }
        }
    })
    .await
    .expect("the subscription ends when the server stops");
    assert_status(&ended, Code::Unavailable, "LEDGER_UNAVAILABLE");
    let metadata = ended
        .get_details_error_info()
        .expect("an ErrorInfo")
        .metadata;
    assert_eq!(
        (
            metadata.get("last_delivered_position").map(String::as_str),
            metadata.get("resume_from_position").map(String::as_str)
        ),
        (Some("1"), Some("2")),
        "{ended:?}"
    );
    let status = server.wait_for_exit().await;
    assert!(
        status.success(),
        "exit after SIGTERM: {status}\n{}",
        server.log()
    );
}

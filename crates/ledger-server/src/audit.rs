//! The auditors' service: the log page by page (`ReadEvents`), followed live (`Subscribe`), its
//! head (`GetHead`) and a consistent copy of the whole store (`Backup`).
//!
//! Streams never hold up the writer: pages and catch-ups are read from the log on tokio's
//! blocking pool, and live events come from the engine's bounded broadcast. Each stream's
//! output buffer is bounded ([`STREAM_BUFFER_LEN`]); a subscriber that does not read falls
//! behind the broadcast and is ended with `SUBSCRIBER_TOO_SLOW`, and told where to resume.
//! Every stream ends when the server begins to stop ([`Ledger::close_streams`]), so that a
//! graceful shutdown never waits for a subscriber.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use ledger_codec::{payload_type_name, EVENT_TYPE_NAMES};
use ledger_engine::{Subscription, SubscriptionError};
use ledger_proto::v1 as api;
use ledger_proto::v1::audit_service_server::AuditService;
use ledger_store::{LogReader, RecordedEvent, StoreError, STREAM_BYTES_MAX};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tonic_types::StatusExt;

use crate::auth::{may_call, may_read, Read, Role};
use crate::services::{head_message, store_status, unavailable, Ledger};
use crate::status::{server_status, server_status_with, ServerReason};

/// Most events one `ReadEvents` call sends: a page is at most a few megabytes (events are at
/// most 4 KiB), read in a few milliseconds, so that no call holds the log for long.
pub const READ_EVENTS_LEN_MAX: u32 = 1000;

/// Messages a stream holds for a client that has not read them yet: bounds each stream's
/// memory to a few hundred kilobytes; beyond it, the sender waits (a page) or the subscription
/// falls behind the broadcast (a live subscriber).
pub const STREAM_BUFFER_LEN: usize = 64;

/// Events read from the log per blocking read of a `ReadEvents` page.
const READ_CHUNK_LEN: u64 = 128;

/// Time between two heartbeats of a subscription, whatever the traffic: a client learns the
/// head and where to resume even when its filter lets nothing through, and a connection that
/// went away is noticed within this time.
pub const SUBSCRIBE_HEARTBEAT_INTERVAL_MS: u64 = 5_000;

/// Most stream prefixes in a subscription filter: a filter is checked against every event.
pub const SUBSCRIBE_STREAM_PREFIXES_MAX: usize = 32;

/// A subscription's filter, checked: an event passes when its stream starts with one of the
/// prefixes (any stream when there is none) and its type is one of the types (any when none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    stream_prefixes: Vec<String>,
    event_types: Vec<&'static str>,
}

impl EventFilter {
    pub fn parse(filter: Option<&api::SubscribeFilter>) -> Result<EventFilter, Status> {
        let Some(filter) = filter else {
            return Ok(EventFilter::default());
        };
        let invalid = crate::status::invalid_field_status;
        if filter.stream_prefixes.len() > SUBSCRIBE_STREAM_PREFIXES_MAX {
            return Err(invalid(
                ServerReason::TextTooLong,
                "filter.stream_prefixes",
                format!(
                    "a filter has at most {SUBSCRIBE_STREAM_PREFIXES_MAX} stream prefixes, not {}",
                    filter.stream_prefixes.len()
                ),
            ));
        }
        if let Some(prefix) = filter
            .stream_prefixes
            .iter()
            .find(|prefix| prefix.len() > STREAM_BYTES_MAX)
        {
            return Err(invalid(
                ServerReason::TextTooLong,
                "filter.stream_prefixes",
                format!(
                    "a stream prefix of {} bytes is longer than a stream name ({STREAM_BYTES_MAX})",
                    prefix.len()
                ),
            ));
        }
        let mut event_types = Vec::with_capacity(filter.event_types.len());
        for name in &filter.event_types {
            let Some(known) = EVENT_TYPE_NAMES
                .iter()
                .find(|known| **known == name.as_str())
            else {
                let shown: String = name.chars().take(64).collect();
                return Err(invalid(
                    ServerReason::UnknownEventType,
                    "filter.event_types",
                    format!(
                        "unknown event type {shown:?}; known: {}",
                        EVENT_TYPE_NAMES.join(", ")
                    ),
                ));
            };
            if !event_types.contains(known) {
                event_types.push(*known);
            }
        }
        Ok(EventFilter {
            stream_prefixes: filter.stream_prefixes.clone(),
            event_types,
        })
    }

    pub fn accepts(&self, event: &ledger_proto::event::v1::Event) -> bool {
        let stream_passes = self.stream_prefixes.is_empty()
            || self
                .stream_prefixes
                .iter()
                .any(|prefix| event.stream.starts_with(prefix.as_str()));
        let type_passes = self.event_types.is_empty()
            || event
                .payload
                .as_ref()
                .is_some_and(|payload| self.event_types.contains(&payload_type_name(payload)));
        stream_passes && type_passes
    }
}

fn audit_event(recorded: RecordedEvent) -> api::AuditEvent {
    api::AuditEvent {
        prev_hash: hex::encode(recorded.prev_hash),
        hash: hex::encode(recorded.hash),
        event: Some(recorded.event),
    }
}

/// A status with an `ErrorInfo` whose metadata says where the subscriber stands.
fn subscription_status(
    reason: ServerReason,
    message: String,
    last_delivered_position: u64,
    resume_from_position: u64,
) -> Status {
    let metadata = HashMap::from([
        (
            "last_delivered_position".to_owned(),
            last_delivered_position.to_string(),
        ),
        (
            "resume_from_position".to_owned(),
            resume_from_position.to_string(),
        ),
    ]);
    server_status_with(reason, message, metadata)
}

/// Sends `message` on a stream, waiting while its buffer is full unless the server is
/// stopping; `false` means the stream is over (the client went away, or the server stops and
/// the buffer is full).
async fn send<T>(
    output: &mpsc::Sender<Result<T, Status>>,
    closing: &mut watch::Receiver<bool>,
    message: Result<T, Status>,
) -> bool {
    tokio::select! {
        biased;
        sent = output.send(message) => sent.is_ok(),
        _ = closing.wait_for(|closing| *closing) => false,
    }
}

/// Reads positions `first..=last` of the log on tokio's blocking pool.
async fn read_chunk(
    reader: &LogReader,
    first: u64,
    last: u64,
) -> Result<Vec<RecordedEvent>, Status> {
    let reader = reader.clone();
    tokio::task::spawn_blocking(move || {
        reader
            .iter(first, last)
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .await
    .map_err(|_| server_status(ServerReason::StoreError, "the log read stopped"))?
    .map_err(|error| store_status(&error))
}

/// Sends the events `first..=last`, read chunk by chunk.
async fn send_page(
    reader: LogReader,
    first: u64,
    last: u64,
    output: mpsc::Sender<Result<api::AuditEvent, Status>>,
    mut closing: watch::Receiver<bool>,
) {
    let mut next = first;
    while next <= last {
        let chunk_last = last.min(next + READ_CHUNK_LEN - 1);
        let events = match read_chunk(&reader, next, chunk_last).await {
            Ok(events) => events,
            Err(status) => {
                let _ = send(&output, &mut closing, Err(status)).await;
                return;
            }
        };
        for recorded in events {
            if !send(&output, &mut closing, Ok(audit_event(recorded))).await {
                return;
            }
        }
        next = chunk_last + 1;
    }
}

/// Runs one subscription to its end: the client goes away, the server stops, the subscriber
/// falls behind, or the log cannot be read.
async fn run_subscription(
    mut subscription: Subscription,
    filter: EventFilter,
    output: mpsc::Sender<Result<api::SubscribeResponse, Status>>,
    mut closing: watch::Receiver<bool>,
) {
    let heartbeat_interval = Duration::from_millis(SUBSCRIBE_HEARTBEAT_INTERVAL_MS);
    let mut heartbeat_at = Instant::now() + heartbeat_interval;
    let mut last_delivered_position = 0;
    loop {
        let wait = heartbeat_at.saturating_duration_since(Instant::now());
        let next = tokio::select! {
            biased;
            _ = closing.wait_for(|closing| *closing) => Err(SubscriptionError::Stopped),
            () = output.closed() => return,
            next = subscription.next_within(wait) => next,
        };
        let message = match next {
            Ok(Some(recorded)) if filter.accepts(&recorded.event) => {
                last_delivered_position = recorded.position;
                Some(api::subscribe_response::Message::Event(audit_event(
                    recorded,
                )))
            }
            Ok(_) => None,
            Err(error) => {
                let resume_from_position = subscription.next_position();
                let status = match error {
                    SubscriptionError::Lagged { next_position } => subscription_status(
                        ServerReason::SubscriberTooSlow,
                        format!(
                            "the subscriber fell too far behind the log; resume from position {next_position}"
                        ),
                        last_delivered_position,
                        next_position,
                    ),
                    SubscriptionError::Stopped => subscription_status(
                        ServerReason::LedgerUnavailable,
                        format!(
                            "the ledger is stopping; resume from position {resume_from_position}"
                        ),
                        last_delivered_position,
                        resume_from_position,
                    ),
                    SubscriptionError::Store(error) => store_status(&error),
                    SubscriptionError::Gap { expected, found } => {
                        tracing::error!(expected, found, "live events skipped positions");
                        server_status(
                            ServerReason::StoreError,
                            "the subscription lost its place in the log",
                        )
                    }
                };
                let reason = status
                    .get_details_error_info()
                    .map(|info| info.reason)
                    .unwrap_or_default();
                tracing::info!(
                    reason,
                    last_delivered_position,
                    resume_from_position,
                    "subscription ended"
                );
                // The last message of the stream; dropped only if the client went away, or if the
                // server is stopping and the client is not reading.
                send(&output, &mut closing, Err(status)).await;
                return;
            }
        };
        if let Some(message) = message {
            let message = api::SubscribeResponse {
                message: Some(message),
            };
            if !send(&output, &mut closing, Ok(message)).await {
                return;
            }
        }
        if Instant::now() >= heartbeat_at {
            let heartbeat = api::SubscribeResponse {
                message: Some(api::subscribe_response::Message::Heartbeat(
                    api::Heartbeat {
                        head: Some(head_message(subscription.known_head())),
                        next_position: subscription.next_position(),
                    },
                )),
            };
            if !send(&output, &mut closing, Ok(heartbeat)).await {
                return;
            }
            heartbeat_at = Instant::now() + heartbeat_interval;
        }
    }
}

/// Longest backup folder path accepted, in bytes (Linux's `PATH_MAX`).
const BACKUP_PATH_BYTES_MAX: usize = 4096;

fn backup_target(text: &str) -> Result<PathBuf, Status> {
    let invalid = |message: &str| {
        crate::status::invalid_field_status(
            ServerReason::InvalidBackupDir,
            "target_dir",
            message.to_owned(),
        )
    };
    if text.is_empty() {
        return Err(invalid("the backup folder is empty"));
    }
    if text.len() > BACKUP_PATH_BYTES_MAX {
        return Err(invalid("the backup folder's path is too long"));
    }
    // The folder is logged and answered back: no control character reaches a terminal.
    if text.chars().any(char::is_control) {
        return Err(crate::status::refusal_status(
            &ledger_domain::Refusal::TextHasControlCharacters {
                field: "target_dir",
            },
        ));
    }
    let path = PathBuf::from(text);
    if !path.is_absolute() {
        return Err(invalid(
            "the backup folder must be an absolute path on the server's machine",
        ));
    }
    Ok(path)
}

fn backup_status(error: &StoreError) -> Status {
    match error {
        StoreError::BackupTargetNotEmpty { path } => server_status(
            ServerReason::BackupDirNotEmpty,
            format!("backup folder {} exists and is not empty", path.display()),
        ),
        StoreError::Io { path, source } => server_status(
            ServerReason::BackupFailed,
            format!("backup folder {}: {source}", path.display()),
        ),
        // The log is in PostgreSQL (issue 19): its backups are the database's.
        StoreError::NotOnThisBackend { backend, .. } => server_status(
            ServerReason::BackupByTheDatabase,
            format!(
                "the event log is kept in {backend}: back it up with the database's own tools \
                 (pg_basebackup, or the failover manager's backups; README, High availability)"
            ),
        ),
        other => {
            tracing::error!(error = %other, "backup failed");
            store_status(other)
        }
    }
}

#[tonic::async_trait]
impl AuditService for Ledger {
    type ReadEventsStream = ReceiverStream<Result<api::AuditEvent, Status>>;
    type SubscribeStream = ReceiverStream<Result<api::SubscribeResponse, Status>>;

    async fn read_events(
        &self,
        request: Request<api::ReadEventsRequest>,
    ) -> Result<Response<Self::ReadEventsStream>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Events)?;
        let from_position = request.get_ref().from_position.max(1);
        let limit = match request.get_ref().limit {
            0 => READ_EVENTS_LEN_MAX,
            limit => limit.min(READ_EVENTS_LEN_MAX),
        };
        let closing = self.streams_closing()?;
        // The head the writer reports between two groups: everything up to it is durable.
        let head = self.read(|view| view.store.head()).await?;
        let last_position = head
            .position
            .min(from_position.saturating_add(u64::from(limit) - 1));
        let (output, stream) = mpsc::channel(STREAM_BUFFER_LEN);
        let reader = self.inner.engine.reader().clone();
        tokio::spawn(send_page(
            reader,
            from_position,
            last_position,
            output,
            closing,
        ));
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn subscribe(
        &self,
        request: Request<api::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Events)?;
        let filter = EventFilter::parse(request.get_ref().filter.as_ref())?;
        let closing = self.streams_closing()?;
        let from_position = request.get_ref().from_position.max(1);
        tracing::info!(principal = %principal, from_position, "subscription started");
        let subscription = self.inner.engine.subscribe(from_position);
        let (output, stream) = mpsc::channel(STREAM_BUFFER_LEN);
        tokio::spawn(run_subscription(subscription, filter, output, closing));
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    async fn get_head(
        &self,
        request: Request<api::GetHeadRequest>,
    ) -> Result<Response<api::Head>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Head)?;
        let head = self.read(|view| view.store.head()).await?;
        Ok(Response::new(head_message(head)))
    }

    async fn backup(
        &self,
        request: Request<api::BackupRequest>,
    ) -> Result<Response<api::BackupResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_call(&principal, &[Role::Auditor])?;
        let target = backup_target(&request.get_ref().target_dir)?;
        let shown = target.display().to_string();
        // On the writer's thread, between two groups: the copy is a state the log was in.
        let report = self
            .read(move |view| view.store.backup_to(&target))
            .await?
            .map_err(|error| backup_status(&error))?;
        tracing::info!(
            principal = %principal,
            target_dir = %shown,
            position = report.head.position,
            records = report.records,
            bytes = report.bytes,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "backup taken"
        );
        Ok(Response::new(api::BackupResponse {
            target_dir: shown,
            head: Some(head_message(report.head)),
            records: report.records,
            bytes: report.bytes,
        }))
    }
}

impl Ledger {
    /// Ends every stream (pages and subscriptions) and refuses new ones: called when the
    /// server begins to stop, since a graceful shutdown waits for every open call.
    pub fn close_streams(&self) {
        self.inner.streams_closing.send_replace(true);
    }

    fn streams_closing(&self) -> Result<watch::Receiver<bool>, Status> {
        let closing = self.inner.streams_closing.subscribe();
        if *closing.borrow() {
            return Err(unavailable());
        }
        Ok(closing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger_proto::event::v1::event::Payload;
    use ledger_proto::event::v1::{BudgetOpened, Event, HoursRedeemed};
    use prost::Message;
    use tonic::Code;

    fn event(stream: &str, payload: Payload) -> Event {
        Event {
            stream: stream.to_owned(),
            payload: Some(payload),
            ..Event::default()
        }
    }

    fn filter(prefixes: &[&str], types: &[&str]) -> Result<EventFilter, Status> {
        EventFilter::parse(Some(&api::SubscribeFilter {
            stream_prefixes: prefixes.iter().map(|text| (*text).to_owned()).collect(),
            event_types: types.iter().map(|text| (*text).to_owned()).collect(),
        }))
    }

    #[test]
    fn a_filter_takes_stream_prefixes_and_event_types() {
        let budget = event(
            "budget/2025",
            Payload::BudgetOpened(BudgetOpened::default()),
        );
        let redeemed = event(
            "company/0403019261",
            Payload::HoursRedeemed(HoursRedeemed::default()),
        );
        let everything = EventFilter::parse(None).expect("no filter");
        assert!(everything.accepts(&budget) && everything.accepts(&redeemed));

        let redemptions = filter(&[], &["HoursRedeemed"]).expect("a known type");
        assert!(!redemptions.accepts(&budget) && redemptions.accepts(&redeemed));

        let budgets = filter(&["budget/"], &[]).expect("a prefix");
        assert!(budgets.accepts(&budget) && !budgets.accepts(&redeemed));

        let both = filter(&["company/0403"], &["BudgetOpened"]).expect("both");
        assert!(!both.accepts(&budget) && !both.accepts(&redeemed));
    }

    #[test]
    fn a_filter_refuses_unknown_types_and_overlong_prefixes() {
        let status = filter(&[], &["HoursRedeemedV9"]).expect_err("unknown type");
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "UNKNOWN_EVENT_TYPE");

        let long = "c".repeat(STREAM_BYTES_MAX + 1);
        let status = filter(&[long.as_str()], &[]).expect_err("too long");
        assert_eq!(status.code(), Code::InvalidArgument);

        let many: Vec<&str> = vec!["company/"; SUBSCRIBE_STREAM_PREFIXES_MAX + 1];
        assert!(filter(&many, &[]).is_err());
    }

    /// The names a filter accepts are exactly the payload messages of the stored schema.
    #[test]
    fn event_types_are_the_payload_messages_of_the_stored_schema() {
        let descriptors = prost_types::FileDescriptorSet::decode(ledger_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let event = descriptors
            .file
            .iter()
            .filter(|file| file.package() == "voucherledger.event.v1")
            .flat_map(|file| &file.message_type)
            .find(|message| message.name() == "Event")
            .expect("the Event message");
        // Each payload as (message name, field name), in the schema's order.
        let in_schema: Vec<(String, String)> = event
            .field
            .iter()
            .filter(|field| field.oneof_index.is_some())
            .map(|field| {
                let message = field.type_name().rsplit('.').next().unwrap_or_default();
                (message.to_owned(), field.name().to_owned())
            })
            .collect();
        // The JSON export keys a payload by the snake case of its name: that must be the
        // schema's field name, as in the protobuf JSON mapping of a oneof.
        let known: Vec<(String, String)> = EVENT_TYPE_NAMES
            .iter()
            .map(|name| ((*name).to_owned(), ledger_codec::snake_case(name)))
            .collect();
        assert_eq!(known, in_schema);
    }

    #[test]
    fn a_backup_folder_is_an_absolute_path() {
        assert!(backup_target("/var/backups/ledger-2025-06-30").is_ok());
        for refused in ["", "backups/today", "./today"] {
            let status = backup_target(refused).expect_err("refused");
            assert_eq!(status.code(), Code::InvalidArgument);
        }
    }
}

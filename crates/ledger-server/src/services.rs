//! The gRPC services: authenticate, check the caller's role, check the size, parse, then hand
//! the command to the single writer (or read the state between two groups) and answer. The
//! auditors' service, with its streams, is in `audit`.

use std::sync::Arc;

use ledger_domain::{Command, Principal, PseudonymKey, Refusal};
use ledger_engine::{EngineHandle, Outcome, SubmitError};
use ledger_projections::Projections;
use ledger_proto::v1 as api;
use ledger_proto::v1::administration_service_server::AdministrationService;
use ledger_proto::v1::operator_service_server::OperatorService;
use ledger_proto::v1::provider_service_server::ProviderService;
use ledger_proto::v1::report_service_server::ReportService;
use ledger_store::{ChainBreak, StoreError};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{may_call, may_read, Authentication, Read, Role};
use crate::status::{
    invalid_field_status, item_status, refusal_status, request_too_large_status, server_status,
    ServerReason,
};
use crate::wire;

/// Most items in one batch call (`IssueVouchersBatch`, `RedeemHoursBatch`): a batch is decided
/// as one group of the writer, so it is bounded by the engine's own limit.
pub const BATCH_LEN_MAX: usize = ledger_engine::BATCH_LEN_MAX;

/// Most bytes of one batch call, all items together; each item is also held to
/// `request_bytes_max`. 1 000 redemptions or issuances take about 200 KiB.
pub const BATCH_REQUEST_BYTES_MAX: usize = 1024 * 1024;

/// Batch calls handed to the writer at the same time; more wait for a turn. The writer's queue
/// bounds messages, and a batch is one message of up to 1 000 commands: this bounds the
/// commands batches can queue (and the memory they hold) to 16 000.
const BATCH_CALLS_CONCURRENT_MAX: usize = 16;

/// What every service shares.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) engine: EngineHandle,
    pub(crate) authentication: Authentication,
    pseudonym_key: PseudonymKey,
    request_bytes_max: usize,
    /// Turns of the batch calls, see [`BATCH_CALLS_CONCURRENT_MAX`].
    batch_turns: Arc<tokio::sync::Semaphore>,
    /// Set when the server begins to stop: every audit stream ends (see `audit`).
    pub(crate) streams_closing: tokio::sync::watch::Sender<bool>,
    /// Calls and refusals counted (`metrics::calls`): the server's layer counts whole calls,
    /// the batch calls count their refused items here.
    calls: crate::metrics::CallMetrics,
}

/// Write requests all carry a client request id.
pub(crate) trait WriteRequest: Message {
    fn request_id(&self) -> &str;
}

macro_rules! write_requests {
    ($($request:ty),* $(,)?) => {
        $(impl WriteRequest for $request {
            fn request_id(&self) -> &str {
                &self.request_id
            }
        })*
    };
}

write_requests!(
    api::OpenBudgetRequest,
    api::AdjustBudgetRequest,
    api::ApproveProviderRequest,
    api::WithdrawProviderRequest,
    api::ApproveModuleRequest,
    api::WithdrawModuleRequest,
    api::RegisterCompanyRequest,
    api::IssueVouchersRequest,
    api::ExpireVouchersRequest,
    api::RecordPayoutRequest,
    api::RedeemHoursRequest,
    api::ReverseRedemptionRequest,
    // Usage codes (issue 15), served by `company`.
    api::OrderUsageCodeRequest,
    api::CancelUsageCodeRequest,
);

impl Ledger {
    pub fn new(
        engine: EngineHandle,
        authentication: Authentication,
        pseudonym_key: PseudonymKey,
        request_bytes_max: usize,
    ) -> Ledger {
        Ledger {
            inner: Arc::new(Inner {
                engine,
                authentication,
                pseudonym_key,
                request_bytes_max,
                batch_turns: Arc::new(tokio::sync::Semaphore::new(BATCH_CALLS_CONCURRENT_MAX)),
                streams_closing: tokio::sync::watch::Sender::new(false),
                calls: crate::metrics::CallMetrics::new(),
            }),
        }
    }

    /// The per-call metrics of this server, for its layer and its metrics endpoint.
    pub fn call_metrics(&self) -> &crate::metrics::CallMetrics {
        &self.inner.calls
    }

    fn check_size(&self, message: &impl Message) -> Result<(), Status> {
        let bytes = message.encoded_len();
        if bytes > self.inner.request_bytes_max {
            return Err(request_too_large_status(
                Some(bytes),
                self.inner.request_bytes_max,
            ));
        }
        Ok(())
    }

    /// The API's size limit of the message a call at `path` carries: a batch call's, or
    /// `request_bytes_max`. The edge names it when tonic's decoding cap refuses a message.
    pub(crate) fn message_bytes_max(&self, path: &str) -> usize {
        if path.ends_with("Batch") {
            BATCH_REQUEST_BYTES_MAX
        } else {
            self.inner.request_bytes_max
        }
    }

    pub(crate) async fn write<R: WriteRequest>(
        &self,
        rpc: &'static str,
        request: Request<R>,
        roles: &[Role],
        build: impl FnOnce(&R, Uuid, &PseudonymKey) -> Result<Command, Refusal>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_call(&principal, roles)?;
        let message = request.into_inner();
        self.check_size(&message)?;
        let parsed = wire::request_id(message.request_id()).and_then(|request_id| {
            let command = build(&message, request_id, &self.inner.pseudonym_key)?;
            ledger_domain::authorize(&principal, &command)?;
            Ok((request_id, command))
        });
        let (request_id, command) = match parsed {
            Ok(parsed) => parsed,
            Err(refusal) => return Err(refused(rpc, &principal, None, &refusal)),
        };
        match self
            .inner
            .engine
            .submit(request_id, principal.clone(), command)
            .await
        {
            Ok(outcome) => {
                tracing::info!(
                    rpc,
                    principal = %principal,
                    %request_id,
                    first_position = outcome.first_position,
                    events = outcome.events.len(),
                    replayed = outcome.replayed,
                    "command accepted"
                );
                Ok(Response::new(write_response(outcome)))
            }
            Err(SubmitError::Refused(refusal)) => {
                Err(refused(rpc, &principal, Some(request_id), &refusal))
            }
            Err(SubmitError::Unavailable) => Err(unavailable()),
            Err(SubmitError::NotTheWriter { writer }) => Err(not_the_writer(writer)),
        }
    }

    /// A batch call: every item is checked, parsed and authorized on its own, as the single
    /// call would be; those that pass are decided by the writer in one group and in order.
    /// The answer has one result per item, at the item's index. Only what concerns the whole
    /// call (authentication, role, size, length, an unavailable writer) fails the call.
    pub(crate) async fn write_batch<B: Message, R: WriteRequest>(
        &self,
        rpc: &'static str,
        path: &'static str,
        request: Request<B>,
        roles: &[Role],
        items: impl FnOnce(B) -> Vec<R>,
        build: impl Fn(&R, Uuid, &PseudonymKey) -> Result<Command, Refusal>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        let principal = self.authenticate(&request)?;
        may_call(&principal, roles)?;
        let message = request.into_inner();
        let bytes = message.encoded_len();
        if bytes > BATCH_REQUEST_BYTES_MAX {
            return Err(request_too_large_status(
                Some(bytes),
                BATCH_REQUEST_BYTES_MAX,
            ));
        }
        let items = items(message);
        if items.is_empty() {
            return Err(invalid_field_status(
                ServerReason::BatchEmpty,
                "items",
                "a batch holds at least one item".to_owned(),
            ));
        }
        if items.len() > BATCH_LEN_MAX {
            return Err(invalid_field_status(
                ServerReason::BatchTooLong,
                "items",
                format!(
                    "batch of {} items is longer than {BATCH_LEN_MAX} items",
                    items.len()
                ),
            ));
        }

        let mut results: Vec<Option<api::batch_item_result::Result>> = vec![None; items.len()];
        let mut submitted = Vec::with_capacity(items.len());
        let mut submitted_at = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            if let Err(status) = self.check_size(item) {
                results[index] = Some(api::batch_item_result::Result::Refused(item_status(
                    &status,
                )));
                continue;
            }
            let parsed = wire::request_id(item.request_id()).and_then(|request_id| {
                let command = build(item, request_id, &self.inner.pseudonym_key)?;
                ledger_domain::authorize(&principal, &command)?;
                Ok((request_id, command))
            });
            match parsed {
                Ok((request_id, command)) => {
                    submitted.push((request_id, principal.clone(), command));
                    submitted_at.push(index);
                }
                Err(refusal) => {
                    let status = refused(rpc, &principal, None, &refusal);
                    results[index] = Some(api::batch_item_result::Result::Refused(item_status(
                        &status,
                    )));
                }
            }
        }

        let mut accepted = 0_usize;
        let mut first_position = None;
        if !submitted.is_empty() {
            // A turn is held only while the writer decides; parsing above needs none. The task
            // owns it until the writer has answered, even if the caller goes away meanwhile:
            // a caller that cancels and sends again cannot queue more than the turns allow.
            let turn = Arc::clone(&self.inner.batch_turns)
                .acquire_owned()
                .await
                .map_err(|_| unavailable())?;
            let engine = self.inner.engine.clone();
            let outcomes = tokio::spawn(async move {
                let outcomes = engine.submit_batch(submitted).await;
                drop(turn);
                outcomes
            })
            .await
            .map_err(|_| unavailable())?
            .map_err(|_| unavailable())?;
            for (index, outcome) in submitted_at.into_iter().zip(outcomes) {
                results[index] = Some(match outcome {
                    Ok(outcome) => {
                        accepted += 1;
                        first_position.get_or_insert(outcome.first_position);
                        api::batch_item_result::Result::Accepted(write_response(outcome))
                    }
                    Err(SubmitError::Refused(refusal)) => {
                        let request_id = wire::request_id(items[index].request_id()).ok();
                        let status = refused(rpc, &principal, request_id, &refusal);
                        api::batch_item_result::Result::Refused(item_status(&status))
                    }
                    Err(SubmitError::Unavailable) => return Err(unavailable()),
                    Err(SubmitError::NotTheWriter { writer }) => {
                        return Err(not_the_writer(writer))
                    }
                });
            }
        }
        tracing::info!(
            rpc,
            principal = %principal,
            items = items.len(),
            accepted,
            refused = items.len() - accepted,
            first_position = first_position.unwrap_or_default(),
            "batch decided"
        );
        // The call answers OK: its refused items are counted here, by reason, not by the layer.
        for result in results.iter().flatten() {
            if let api::batch_item_result::Result::Refused(status) = result {
                if let Some(reason) = error_info_reason(status) {
                    self.inner.calls.count_item_refusal(path, &reason);
                }
            }
        }
        let results = items
            .iter()
            .zip(results)
            .map(|(item, result)| api::BatchItemResult {
                request_id: item.request_id().to_owned(),
                result,
            })
            .collect();
        Ok(Response::new(api::BatchWriteResponse { results }))
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ledger_engine::View<'_>) -> T + Send + 'static,
    ) -> Result<T, Status> {
        self.inner
            .engine
            .read(read)
            .await
            .map_err(|_| unavailable())
    }

    /// A year summary `as_of` a past position or date from the year points (see
    /// `ledger_engine::year_points`): the budgets and one year's figures, and at most one
    /// point interval of the log, on a blocking thread. `None` when that path does not apply
    /// (no `as_of`, a business date) or has no usable point: [`Self::report`] answers then.
    async fn year_summary_from_points(
        &self,
        as_of: Option<&api::AsOf>,
        year: i32,
    ) -> Result<Option<api::YearSummary>, Status> {
        let folded = self
            .answer_from_points(as_of, move |engine, position| {
                engine.year_summary_as_of(position, year)
            })
            .await?;
        folded
            .map(|summary| wire::year_summary_folded(&summary).map_err(|r| refusal_status(&r)))
            .transpose()
    }

    /// The budgets, a year's figures and what they are broken down by, `as_of` a past position
    /// or date, from the year points (see `ledger_engine::year_points`): at most one point
    /// interval of the log, on a blocking thread. `None` when that path does not apply (no
    /// `as_of`, a business date) or has no usable point: [`Self::report`] answers then.
    async fn year_report_from_points(
        &self,
        as_of: Option<&api::AsOf>,
        year: i32,
    ) -> Result<Option<ledger_projections::YearReportFold>, Status> {
        self.answer_from_points(as_of, move |engine, position| {
            engine.year_report_as_of(position, year)
        })
        .await
    }

    /// The budgets `as_of` a past position or date, from the year points' indexes alone: see
    /// [`Self::year_report_from_points`].
    async fn budgets_from_points(
        &self,
        as_of: Option<&api::AsOf>,
    ) -> Result<Option<ledger_engine::year_points::BudgetsAsOf>, Status> {
        self.answer_from_points(as_of, |engine, position| engine.budgets_as_of(position))
            .await
    }

    /// `fold(engine, position)` for the position an `as_of` stands for, on a blocking thread;
    /// `None` for no `as_of`, a business date (its own replay, by [`Self::report`]), or when
    /// the points cannot answer.
    async fn answer_from_points<T: Send + 'static>(
        &self,
        as_of: Option<&api::AsOf>,
        fold: impl FnOnce(&EngineHandle, u64) -> Result<Option<T>, ledger_engine::StartError>
            + Send
            + 'static,
    ) -> Result<Option<T>, Status> {
        let Some(as_of) = wire::as_of(as_of).map_err(|refusal| refusal_status(&refusal))? else {
            return Ok(None);
        };
        let engine = self.inner.engine.clone();
        tokio::task::spawn_blocking(move || -> Result<_, Status> {
            let reader = engine.reader();
            let head = reader.head().map_err(|error| store_status(&error))?;
            let Ok(position) = as_of_position(reader, &as_of, head.position)? else {
                // A business date: its own replay (docs/RULES.md §21), by `report`.
                return Ok(None);
            };
            match fold(&engine, position) {
                Ok(folded) => Ok(folded),
                Err(error) => {
                    // The full projections' path reports it, if it is the log's.
                    tracing::warn!(%error, position, "year point replay failed");
                    Ok(None)
                }
            }
        })
        .await
        .map_err(|_| server_status(ServerReason::StoreError, "the point-in-time replay stopped"))?
    }

    /// Answers a report from the projections: the live ones, between two groups of the writer;
    /// or, for an `as_of` in the past, projections rebuilt up to that position on a blocking
    /// thread from the nearest retained snapshot at or before it, so that the writer never
    /// waits for a replay and the replay is never longer than the snapshots' spacing.
    pub(crate) async fn report<T: Send + 'static>(
        &self,
        as_of: Option<api::AsOf>,
        answer: impl FnOnce(&Projections) -> Result<T, Refusal> + Send + 'static,
    ) -> Result<T, Status> {
        let Some(as_of) =
            wire::as_of(as_of.as_ref()).map_err(|refusal| refusal_status(&refusal))?
        else {
            return self
                .read(move |view| answer(view.projections))
                .await?
                .map_err(|r| refusal_status(&r));
        };
        let engine = self.inner.engine.clone();
        let rebuilt = tokio::task::spawn_blocking(move || -> Result<Projections, Status> {
            let reader = engine.reader();
            let head = reader.head().map_err(|error| store_status(&error))?;
            let position = match as_of_position(reader, &as_of, head.position)? {
                Ok(position) => position,
                Err(business_date) => {
                    return crate::business_date::projections(reader, business_date, head.position);
                }
            };
            engine.projections_as_of(position).map_err(|error| {
                tracing::error!(%error, position, "point-in-time replay failed");
                server_status(
                    ServerReason::ReplayFailed,
                    format!("the log cannot be replayed to position {position}"),
                )
            })
        })
        .await
        .map_err(|_| {
            // The replay's thread died: our fault, not the log's.
            server_status(ServerReason::StoreError, "the point-in-time replay stopped")
        })??;
        answer(&rebuilt).map_err(|refusal| refusal_status(&refusal))
    }
}

fn refused(
    rpc: &'static str,
    principal: &Principal,
    request_id: Option<Uuid>,
    refusal: &Refusal,
) -> Status {
    tracing::info!(
        rpc,
        principal = %principal,
        request_id = request_id.map(|id| id.to_string()).unwrap_or_default(),
        reason = refusal.reason(),
        "command refused"
    );
    refusal_status(refusal)
}

/// The `ErrorInfo` reason in the details of a batch item's status.
fn error_info_reason(status: &tonic_types::pb::Status) -> Option<String> {
    status.details.iter().find_map(|detail| {
        if !detail.type_url.ends_with("/google.rpc.ErrorInfo") {
            return None;
        }
        tonic_types::pb::ErrorInfo::decode(detail.value.as_slice())
            .ok()
            .map(|info| info.reason)
    })
}

pub(crate) fn unavailable() -> Status {
    server_status(
        ServerReason::LedgerUnavailable,
        "the ledger's writer is not running; retry with the same request id",
    )
}

/// A write sent to a hot standby: UNAVAILABLE / NOT_THE_WRITER, with the writer's address in
/// `ErrorInfo.metadata.writer` when it advertised one.
pub(crate) fn not_the_writer(writer: Option<String>) -> Status {
    let mut metadata = std::collections::HashMap::new();
    let message = match writer {
        Some(writer) => {
            let message = format!("this ledger process is a standby; send writes to the writer at {writer}, with the same request id");
            metadata.insert("writer".to_owned(), writer);
            message
        }
        None => {
            "this ledger process is a standby; send writes to the writer, with the same request id"
                .to_owned()
        }
    };
    crate::status::server_status_with(ServerReason::NotTheWriter, message, metadata)
}

pub(crate) fn store_status(error: &StoreError) -> Status {
    match error {
        StoreError::ChainBroken(ChainBreak { position, .. }) => server_status(
            ServerReason::ChainBroken,
            format!("the event log's hash chain is broken at position {position}"),
        ),
        other => {
            tracing::error!(error = %other, "event log read failed");
            server_status(ServerReason::StoreError, "the event log cannot be read")
        }
    }
}

fn write_response(outcome: Outcome) -> api::WriteResponse {
    api::WriteResponse {
        receipt: Some(api::Receipt {
            request_id: outcome.request_id.to_string(),
            first_position: outcome.first_position,
            event_count: u32::try_from(outcome.events.len()).unwrap_or(u32::MAX),
            recorded_at: outcome.recorded_at,
            replayed: outcome.replayed,
        }),
        events: outcome
            .events
            .into_iter()
            .map(|recorded| recorded.event)
            .collect(),
        expiry: None,
    }
}

pub(crate) fn head_message(head: ledger_store::Head) -> api::Head {
    api::Head {
        position: head.position,
        hash: hex::encode(head.hash),
    }
}

const ADMINISTRATION: &[Role] = &[Role::Administration];
const OPERATOR: &[Role] = &[Role::Operator];
const PROVIDER: &[Role] = &[Role::Provider];

#[tonic::async_trait]
impl AdministrationService for Ledger {
    async fn open_budget(
        &self,
        request: Request<api::OpenBudgetRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("open_budget", request, ADMINISTRATION, |r, _, _| {
            wire::open_budget(r)
        })
        .await
    }

    async fn adjust_budget(
        &self,
        request: Request<api::AdjustBudgetRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("adjust_budget", request, ADMINISTRATION, |r, _, _| {
            wire::adjust_budget(r)
        })
        .await
    }

    async fn approve_provider(
        &self,
        request: Request<api::ApproveProviderRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("approve_provider", request, ADMINISTRATION, |r, _, _| {
            wire::approve_provider(r)
        })
        .await
    }

    async fn withdraw_provider(
        &self,
        request: Request<api::WithdrawProviderRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("withdraw_provider", request, ADMINISTRATION, |r, _, _| {
            wire::withdraw_provider(r)
        })
        .await
    }

    async fn approve_module(
        &self,
        request: Request<api::ApproveModuleRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("approve_module", request, ADMINISTRATION, |r, _, _| {
            wire::approve_module(r)
        })
        .await
    }

    async fn withdraw_module(
        &self,
        request: Request<api::WithdrawModuleRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("withdraw_module", request, ADMINISTRATION, |r, _, _| {
            wire::withdraw_module(r)
        })
        .await
    }
}

#[tonic::async_trait]
impl OperatorService for Ledger {
    async fn register_company(
        &self,
        request: Request<api::RegisterCompanyRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("register_company", request, OPERATOR, |r, _, _| {
            wire::register_company(r)
        })
        .await
    }

    async fn issue_vouchers(
        &self,
        request: Request<api::IssueVouchersRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        // The request id names the batch, so a retry cannot issue a second one.
        self.write("issue_vouchers", request, OPERATOR, |r, request_id, _| {
            wire::issue_vouchers(r, request_id)
        })
        .await
    }

    async fn issue_vouchers_batch(
        &self,
        request: Request<api::IssueVouchersBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "issue_vouchers_batch",
            "/voucherledger.v1.OperatorService/IssueVouchersBatch",
            request,
            OPERATOR,
            |batch| batch.items,
            |r, request_id, _| wire::issue_vouchers(r, request_id),
        )
        .await
    }

    async fn expire_vouchers(
        &self,
        request: Request<api::ExpireVouchersRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        let as_of = wire::date("as_of", &request.get_ref().as_of).ok();
        let mut response = self
            .write("expire_vouchers", request, OPERATOR, |r, _, _| {
                wire::expire_vouchers(r)
            })
            .await?;
        // Accepted, so `as_of` parsed. Whether more is due is read after the run, between two
        // groups: what this run left (more than EXPIRY_EVENTS_MAX batches) and what became
        // due since a retried run.
        if let Some(as_of) = as_of {
            let more_due = self.read(move |view| expiry_due(view.state, as_of)).await?;
            let answer = response.get_mut();
            answer.expiry = Some(api::ExpiryRun {
                batches_expired: u32::try_from(answer.events.len()).unwrap_or(u32::MAX),
                more_due,
            });
        }
        Ok(response)
    }

    async fn register_companies_batch(
        &self,
        request: Request<api::RegisterCompaniesBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "register_companies_batch",
            "/voucherledger.v1.OperatorService/RegisterCompaniesBatch",
            request,
            OPERATOR,
            |batch| batch.items,
            |r, _, _| wire::register_company(r),
        )
        .await
    }

    async fn record_payouts_batch(
        &self,
        request: Request<api::RecordPayoutsBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "record_payouts_batch",
            "/voucherledger.v1.OperatorService/RecordPayoutsBatch",
            request,
            OPERATOR,
            |batch| batch.items,
            |r, _, _| wire::record_payout(r),
        )
        .await
    }

    async fn record_payout(
        &self,
        request: Request<api::RecordPayoutRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("record_payout", request, OPERATOR, |r, _, _| {
            wire::record_payout(r)
        })
        .await
    }

    async fn get_wallet(
        &self,
        request: Request<api::GetWalletRequest>,
    ) -> Result<Response<api::Wallet>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Wallet)?;
        let number = wire::enterprise_number(&request.get_ref().enterprise_number)
            .map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        self.report(as_of, move |projections| wire::wallet(projections, &number))
            .await
            .map(Response::new)
    }
}

#[tonic::async_trait]
impl ProviderService for Ledger {
    async fn redeem_hours(
        &self,
        request: Request<api::RedeemHoursRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        // The request id names the redemption, which the provider quotes to reverse it.
        self.write("redeem_hours", request, PROVIDER, |r, request_id, key| {
            wire::redeem_hours(r, request_id, key)
        })
        .await
    }

    async fn redeem_hours_batch(
        &self,
        request: Request<api::RedeemHoursBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "redeem_hours_batch",
            "/voucherledger.v1.ProviderService/RedeemHoursBatch",
            request,
            PROVIDER,
            |batch| batch.items,
            wire::redeem_hours,
        )
        .await
    }

    async fn reverse_redemption(
        &self,
        request: Request<api::ReverseRedemptionRequest>,
    ) -> Result<Response<api::WriteResponse>, Status> {
        self.write("reverse_redemption", request, PROVIDER, |r, _, _| {
            wire::reverse_redemption(r)
        })
        .await
    }

    async fn get_statement(
        &self,
        request: Request<api::GetStatementRequest>,
    ) -> Result<Response<api::Statement>, Status> {
        let principal = self.authenticate(&request)?;
        let provider_id =
            wire::provider_id(&request.get_ref().provider_id).map_err(|r| refusal_status(&r))?;
        may_read(
            &principal,
            &Read::Statement {
                provider_id: &provider_id,
            },
        )?;
        let as_of = request.get_ref().as_of.clone();
        self.report(as_of, move |projections| {
            wire::statement(projections, &provider_id)
        })
        .await
        .map(Response::new)
    }

    async fn reverse_redemptions_batch(
        &self,
        request: Request<api::ReverseRedemptionsBatchRequest>,
    ) -> Result<Response<api::BatchWriteResponse>, Status> {
        self.write_batch(
            "reverse_redemptions_batch",
            "/voucherledger.v1.ProviderService/ReverseRedemptionsBatch",
            request,
            PROVIDER,
            |batch| batch.items,
            |r, _, _| wire::reverse_redemption(r),
        )
        .await
    }
}

/// Whether a batch valid until before `as_of` still holds vouchers: what an expiry run as of
/// that date would take (the rule's own test, `decide::expire_vouchers`).
fn expiry_due(state: &ledger_domain::LedgerState, as_of: chrono::NaiveDate) -> bool {
    state.companies.values().any(|company| {
        company
            .batches
            .values()
            .any(|batch| batch.remaining > 0 && batch.valid_until < as_of)
    })
}

#[tonic::async_trait]
impl ReportService for Ledger {
    async fn get_budget(
        &self,
        request: Request<api::GetBudgetRequest>,
    ) -> Result<Response<api::Budget>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Report)?;
        let year = wire::report_year(request.get_ref().year).map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        if let Some(budgets) = self.budgets_from_points(as_of.as_ref()).await? {
            return wire::budget_folded(&budgets, year)
                .map(Response::new)
                .map_err(|refusal| refusal_status(&refusal));
        }
        self.report(as_of, move |projections| wire::budget(projections, year))
            .await
            .map(Response::new)
    }

    async fn get_year_summary(
        &self,
        request: Request<api::GetYearSummaryRequest>,
    ) -> Result<Response<api::YearSummary>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Report)?;
        let year = wire::report_year(request.get_ref().year).map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        if let Some(summary) = self.year_summary_from_points(as_of.as_ref(), year).await? {
            return Ok(Response::new(summary));
        }
        self.report(as_of, move |projections| {
            wire::year_summary(projections, year)
        })
        .await
        .map(Response::new)
    }

    async fn get_companies(
        &self,
        request: Request<api::GetCompaniesRequest>,
    ) -> Result<Response<api::CompaniesReport>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Report)?;
        let year = wire::report_year(request.get_ref().year).map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        if let Some(fold) = self.year_report_from_points(as_of.as_ref(), year).await? {
            return Ok(Response::new(wire::companies_folded(&fold)));
        }
        self.report(as_of, move |projections| {
            Ok(wire::companies(projections, year))
        })
        .await
        .map(Response::new)
    }

    async fn get_training_hours(
        &self,
        request: Request<api::GetTrainingHoursRequest>,
    ) -> Result<Response<api::TrainingHours>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Report)?;
        let year = wire::report_year(request.get_ref().year).map_err(|r| refusal_status(&r))?;
        let as_of = request.get_ref().as_of.clone();
        if let Some(fold) = self.year_report_from_points(as_of.as_ref(), year).await? {
            return Ok(Response::new(wire::training_hours_folded(&fold)));
        }
        self.report(as_of, move |projections| {
            Ok(wire::training_hours(projections, year))
        })
        .await
        .map(Response::new)
    }

    async fn get_trial_balance(
        &self,
        request: Request<api::GetTrialBalanceRequest>,
    ) -> Result<Response<api::TrialBalance>, Status> {
        let principal = self.authenticate(&request)?;
        may_read(&principal, &Read::Report)?;
        let as_of = request.get_ref().as_of.clone();
        self.report(as_of, |projections| Ok(wire::trial_balance(projections)))
            .await
            .map(Response::new)
    }
}

/// The position an `as_of` stands for: at most `head`; a date, the last position recorded on
/// or before its end; a business date is no position of the log (`Err` gives it back for its
/// own replay). Blocking (a date reads the log).
fn as_of_position(
    reader: &ledger_store::LogReader,
    as_of: &wire::AsOf,
    head: u64,
) -> Result<Result<u64, chrono::NaiveDate>, Status> {
    match as_of {
        wire::AsOf::Position(position) => Ok(Ok((*position).min(head))),
        wire::AsOf::Date(date) => ledger_engine::recovery::last_position_on(reader, *date, head)
            .map(Ok)
            .map_err(|error| store_status(&error)),
        wire::AsOf::BusinessDate(date) => Ok(Err(*date)),
    }
}

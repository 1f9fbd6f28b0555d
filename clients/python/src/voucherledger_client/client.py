"""A thin typed wrapper over the generated stubs.

What it adds to them, and nothing else:

- every write gets a fresh request id (a UUID) when the request has none;
- a write whose outcome is unknown (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``, or the ledger's
  ``LEDGER_OUTCOME_UNKNOWN``) is sent again *with the same request id*, so the ledger answers
  it from its log (``replayed = true``) if the first attempt was written, and writes it once
  otherwise; reads are retried the same way, having no effect;
- refusals become :class:`~voucherledger_client.errors.LedgerError`, carrying the ErrorInfo
  reason and metadata;
- the bearer token goes with every call.

The requests and answers are the generated messages themselves (``voucherledger.v1.ledger_pb2``).
"""

from __future__ import annotations

import time
import uuid
from typing import Callable, Iterator, Optional, Sequence, Tuple, TypeVar

import grpc
from voucherledger.v1 import ledger_pb2, ledger_pb2_grpc

from .errors import LedgerError

Request = TypeVar("Request")
Answer = TypeVar("Answer")

#: Attempts of one call at most, the first included: enough to ride out a restart of the
#: server, few enough that a caller hears of a lasting outage within seconds.
ATTEMPTS_MAX = 4
#: The wait before the first retry, in seconds; doubled before each further one.
RETRY_DELAY_S = 0.2
#: The deadline of one attempt, in seconds: a write is made durable in milliseconds.
TIMEOUT_S = 10.0


def new_request_id() -> str:
    """A fresh client request id."""
    return str(uuid.uuid4())


class LedgerClient:
    """One connection to the ledger, for one principal (its bearer token).

    ``target`` is ``host:port``. Pass ``credentials`` (``grpc.ssl_channel_credentials(...)``)
    for TLS, or ``channel`` to bring one of your own (interceptors, options).
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        token: Optional[str] = None,
        *,
        credentials: Optional[grpc.ChannelCredentials] = None,
        channel: Optional[grpc.Channel] = None,
        timeout_s: float = TIMEOUT_S,
        attempts_max: int = ATTEMPTS_MAX,
        retry_delay_s: float = RETRY_DELAY_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts_max < 1:
            raise ValueError("attempts_max must be at least 1")
        if channel is None:
            channel = (
                grpc.secure_channel(target, credentials)
                if credentials is not None
                else grpc.insecure_channel(target)
            )
        self.channel = channel
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.timeout_s = timeout_s
        self.attempts_max = attempts_max
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep
        self.administration = ledger_pb2_grpc.AdministrationServiceStub(channel)
        self.operator = ledger_pb2_grpc.OperatorServiceStub(channel)
        self.provider = ledger_pb2_grpc.ProviderServiceStub(channel)
        self.reports = ledger_pb2_grpc.ReportServiceStub(channel)
        self.audit = ledger_pb2_grpc.AuditServiceStub(channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "LedgerClient":
        return self

    def __exit__(self, *_exception: object) -> None:
        self.close()

    # The retry loop, shared by every unary call.

    def _call(self, method: Callable[..., Answer], request: object) -> Answer:
        delay = self.retry_delay_s
        for attempt in range(1, self.attempts_max + 1):
            try:
                return method(request, metadata=self._metadata, timeout=self.timeout_s)
            except grpc.RpcError as rpc_error:
                error = LedgerError.from_rpc_error(rpc_error)
                if not error.outcome_unknown or attempt == self.attempts_max:
                    raise error from None
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def write(self, method: Callable[..., Answer], request: Request) -> Answer:
        """Sends a write request (giving it a request id if it has none), with retries."""
        if not getattr(request, "request_id"):
            request.request_id = new_request_id()  # type: ignore[attr-defined]
        return self._call(method, request)

    def write_batch(self, method: Callable[..., Answer], request: Request) -> Answer:
        """Sends a batch (giving each item without one a request id), with retries.

        The answer holds one result per item; see :func:`item_error`.
        """
        for item in request.items:  # type: ignore[attr-defined]
            if not item.request_id:
                item.request_id = new_request_id()
        return self._call(method, request)

    def read(self, method: Callable[..., Answer], request: object) -> Answer:
        """Sends a read request, with retries (a read changes nothing)."""
        return self._call(method, request)

    # Administration.

    def open_budget(self, request: ledger_pb2.OpenBudgetRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.OpenBudget, request)

    def adjust_budget(self, request: ledger_pb2.AdjustBudgetRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.AdjustBudget, request)

    def approve_provider(
        self, request: ledger_pb2.ApproveProviderRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.ApproveProvider, request)

    def withdraw_provider(
        self, request: ledger_pb2.WithdrawProviderRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.WithdrawProvider, request)

    def approve_module(self, request: ledger_pb2.ApproveModuleRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.ApproveModule, request)

    def withdraw_module(
        self, request: ledger_pb2.WithdrawModuleRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.administration.WithdrawModule, request)

    # Operator.

    def register_company(
        self, request: ledger_pb2.RegisterCompanyRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.operator.RegisterCompany, request)

    def issue_vouchers(self, request: ledger_pb2.IssueVouchersRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.operator.IssueVouchers, request)

    def issue_vouchers_batch(
        self, request: ledger_pb2.IssueVouchersBatchRequest
    ) -> ledger_pb2.BatchWriteResponse:
        return self.write_batch(self.operator.IssueVouchersBatch, request)

    def expire_vouchers(
        self, request: ledger_pb2.ExpireVouchersRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.operator.ExpireVouchers, request)

    def record_payout(self, request: ledger_pb2.RecordPayoutRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.operator.RecordPayout, request)

    def get_wallet(self, request: ledger_pb2.GetWalletRequest) -> ledger_pb2.Wallet:
        return self.read(self.operator.GetWallet, request)

    # Provider.

    def redeem_hours(self, request: ledger_pb2.RedeemHoursRequest) -> ledger_pb2.WriteResponse:
        return self.write(self.provider.RedeemHours, request)

    def redeem_hours_batch(
        self, request: ledger_pb2.RedeemHoursBatchRequest
    ) -> ledger_pb2.BatchWriteResponse:
        return self.write_batch(self.provider.RedeemHoursBatch, request)

    def reverse_redemption(
        self, request: ledger_pb2.ReverseRedemptionRequest
    ) -> ledger_pb2.WriteResponse:
        return self.write(self.provider.ReverseRedemption, request)

    def get_statement(self, request: ledger_pb2.GetStatementRequest) -> ledger_pb2.Statement:
        return self.read(self.provider.GetStatement, request)

    # Reports.

    def get_budget(self, request: ledger_pb2.GetBudgetRequest) -> ledger_pb2.Budget:
        return self.read(self.reports.GetBudget, request)

    def get_year_summary(
        self, request: ledger_pb2.GetYearSummaryRequest
    ) -> ledger_pb2.YearSummary:
        return self.read(self.reports.GetYearSummary, request)

    def get_companies(
        self, request: ledger_pb2.GetCompaniesRequest
    ) -> ledger_pb2.CompaniesReport:
        return self.read(self.reports.GetCompanies, request)

    def get_training_hours(
        self, request: ledger_pb2.GetTrainingHoursRequest
    ) -> ledger_pb2.TrainingHours:
        return self.read(self.reports.GetTrainingHours, request)

    def get_trial_balance(
        self, request: ledger_pb2.GetTrialBalanceRequest
    ) -> ledger_pb2.TrialBalance:
        return self.read(self.reports.GetTrialBalance, request)

    # Audit.

    def get_head(self) -> ledger_pb2.Head:
        return self.read(self.audit.GetHead, ledger_pb2.GetHeadRequest())

    def backup(self, request: ledger_pb2.BackupRequest) -> ledger_pb2.BackupResponse:
        """Not retried: a backup writes a folder, and a second attempt would find it there."""
        try:
            return self.audit.Backup(request, metadata=self._metadata, timeout=self.timeout_s)
        except grpc.RpcError as rpc_error:
            raise LedgerError.from_rpc_error(rpc_error) from None

    def read_events(self, request: ledger_pb2.ReadEventsRequest) -> Iterator[ledger_pb2.AuditEvent]:
        """The events in a range, as a stream (not retried: resume from the last position)."""
        try:
            yield from self.audit.ReadEvents(request, metadata=self._metadata)
        except grpc.RpcError as rpc_error:
            raise LedgerError.from_rpc_error(rpc_error) from None


def item_error(result: ledger_pb2.BatchItemResult) -> Optional[LedgerError]:
    """The refusal of one item of a batch answer, or ``None`` when it was accepted."""
    if result.WhichOneof("result") == "refused":
        return LedgerError.from_status(result.refused)
    return None


def item_errors(answer: ledger_pb2.BatchWriteResponse) -> Sequence[Optional[LedgerError]]:
    """The refusal of each item of a batch answer, in the items' order."""
    return [item_error(result) for result in answer.results]

"""The Python client against the real voucher-ledger server (see conftest.py).

Each test approves providers of its own (``AG-PY-...``), so the tests share one server and
its log without seeing each other's writes.
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from voucherledger.v1 import ledger_pb2

from voucherledger_client import LedgerClient, LedgerError, item_errors

ADMINISTRATION = "demo-administration-token"
AUDITOR = "demo-auditor-token"
PROVIDER = "demo-provider-AG-0012-token"


def provider_id() -> str:
    return f"AG-PY-{uuid.uuid4().hex[:8].upper()}"


def approval(provider: str, request_id: str = "") -> ledger_pb2.ApproveProviderRequest:
    return ledger_pb2.ApproveProviderRequest(
        request_id=request_id,
        provider_id=provider,
        name="Formations Python",
        approved_from="2025-01-01",
    )


class LostAnswers(grpc.UnaryUnaryClientInterceptor):
    """Lets each call reach the real server, then loses the first ``losses`` answers: the
    caller sees DEADLINE_EXCEEDED, as when a network drops the answer after the write."""

    def __init__(self, losses: int) -> None:
        self.losses = losses
        self.request_ids: list = []

    def intercept_unary_unary(self, continuation, details, request):
        self.request_ids.append(getattr(request, "request_id", None))
        outcome = continuation(details, request)
        outcome.result()  # the server has answered (and, for a write, made it durable)
        if self.losses > 0:
            self.losses -= 1
            raise LostAnswer()
        return outcome


class LostAnswer(grpc.RpcError, grpc.Call):
    """What grpcio raises for a deadline that passed, reduced to what the client reads."""

    def code(self):
        return grpc.StatusCode.DEADLINE_EXCEEDED

    def details(self):
        return "deadline exceeded (the answer was lost)"

    def trailing_metadata(self):
        return ()

    def initial_metadata(self):
        return ()

    def is_active(self):
        return False

    def time_remaining(self):
        return None

    def cancel(self):
        return False

    def add_callback(self, callback):
        return False


def client(server, token: str, **options) -> LedgerClient:
    return LedgerClient(server.address, token, sleep=lambda _seconds: None, **options)


def test_a_write_gets_a_request_id_and_the_same_request_again_is_replayed(server):
    with client(server, ADMINISTRATION) as ledger:
        request = approval(provider_id())
        first = ledger.approve_provider(request)
        assert uuid.UUID(request.request_id)
        assert first.receipt.request_id == request.request_id
        assert not first.receipt.replayed
        assert first.receipt.event_count == 1

        again = ledger.approve_provider(request)
        assert again.receipt.replayed
        assert again.receipt.first_position == first.receipt.first_position


def test_a_refusal_is_a_ledger_error_with_its_reason_and_metadata(server):
    with client(server, ADMINISTRATION) as ledger:
        provider = provider_id()
        ledger.approve_provider(approval(provider))
        with pytest.raises(LedgerError) as refused:
            ledger.approve_provider(approval(provider))
        error = refused.value
        assert error.code == grpc.StatusCode.ALREADY_EXISTS
        assert error.reason == "PROVIDER_ALREADY_APPROVED"
        assert error.domain == "voucherledger.v1"
        assert not error.outcome_unknown

        # The same request id with other content: REQUEST_ID_REUSED, naming the field.
        request_id = str(uuid.uuid4())
        ledger.approve_provider(approval(provider_id(), request_id))
        with pytest.raises(LedgerError) as reused:
            ledger.approve_provider(approval(provider_id(), request_id))
        assert reused.value.reason == "REQUEST_ID_REUSED"
        assert reused.value.code == grpc.StatusCode.ALREADY_EXISTS


def test_malformed_input_names_its_field_in_metadata_and_bad_request(server):
    with client(server, ADMINISTRATION) as ledger:
        request = approval(provider_id())
        request.approved_from = "2025-13-45"
        with pytest.raises(LedgerError) as refused:
            ledger.approve_provider(request)
        error = refused.value
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.reason == "INVALID_DATE"
        assert error.metadata["field"] == "approved_from"
        assert [violation.field for violation in error.field_violations] == ["approved_from"]


def test_without_a_token_the_error_is_unauthenticated_and_not_retried(server):
    attempts = LostAnswers(losses=0)
    channel = grpc.intercept_channel(grpc.insecure_channel(server.address), attempts)
    with LedgerClient(channel=channel, sleep=lambda _seconds: None) as ledger:
        with pytest.raises(LedgerError) as refused:
            ledger.get_head()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert refused.value.reason == "UNAUTHENTICATED"
    assert len(attempts.request_ids) == 1


def test_a_lost_answer_is_retried_with_the_same_request_id_and_written_once(server):
    lost = LostAnswers(losses=2)
    channel = grpc.intercept_channel(grpc.insecure_channel(server.address), lost)
    with LedgerClient(channel=channel, token=ADMINISTRATION, sleep=lambda _seconds: None) as ledger:
        before = ledger_head(server)
        answer = ledger.approve_provider(approval(provider_id()))
    # Three attempts, one request id: the first was written, the others answered from the log.
    assert len(lost.request_ids) == 3
    assert len(set(lost.request_ids)) == 1
    assert answer.receipt.request_id == lost.request_ids[0]
    assert answer.receipt.replayed
    assert ledger_head(server) == before + 1


def test_when_every_answer_is_lost_the_unknown_outcome_is_raised_after_the_last_attempt(server):
    lost = LostAnswers(losses=100)
    channel = grpc.intercept_channel(grpc.insecure_channel(server.address), lost)
    with LedgerClient(
        channel=channel, token=ADMINISTRATION, attempts_max=3, sleep=lambda _seconds: None
    ) as ledger:
        with pytest.raises(LedgerError) as unknown:
            ledger.approve_provider(approval(provider_id()))
    assert unknown.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert unknown.value.outcome_unknown
    assert len(lost.request_ids) == 3
    assert len(set(lost.request_ids)) == 1


def test_the_ledgers_outcome_unknown_reason_is_an_unknown_outcome():
    info = error_details_pb2.ErrorInfo(
        reason="LEDGER_OUTCOME_UNKNOWN", domain="voucherledger.v1"
    )
    status = status_pb2.Status(code=grpc.StatusCode.DEADLINE_EXCEEDED.value[0], message="late")
    status.details.add().Pack(info)
    error = LedgerError.from_status(status)
    assert error.outcome_unknown
    assert error.reason == "LEDGER_OUTCOME_UNKNOWN"
    refused = status_pb2.Status(code=grpc.StatusCode.FAILED_PRECONDITION.value[0], message="no")
    refused.details.add().Pack(error_details_pb2.ErrorInfo(reason="QUOTA_EXCEEDED"))
    assert not LedgerError.from_status(refused).outcome_unknown


def test_a_batch_gives_each_item_an_id_and_each_refused_item_its_error(server):
    with client(server, PROVIDER) as ledger:
        items = [
            ledger_pb2.RedeemHoursRequest(provider_id="AG-0012", module_id="M-NONE"),
            ledger_pb2.RedeemHoursRequest(request_id="not-a-uuid", provider_id="AG-0012"),
        ]
        answer = ledger.redeem_hours_batch(ledger_pb2.RedeemHoursBatchRequest(items=items))
    assert len(answer.results) == 2
    assert uuid.UUID(answer.results[0].request_id)
    errors = item_errors(answer)
    assert all(error is not None for error in errors)
    assert errors[1].reason == "INVALID_REQUEST_ID"
    assert errors[1].code == grpc.StatusCode.INVALID_ARGUMENT
    assert errors[0].reason and errors[0].reason != "INVALID_REQUEST_ID"


def ledger_head(server) -> int:
    with client(server, AUDITOR) as ledger:
        return ledger.get_head().position

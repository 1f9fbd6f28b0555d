"""The ledger's refusals as Python exceptions.

Every refusal of the ledger carries a ``google.rpc.Status`` in the ``grpc-status-details-bin``
trailer: an ``ErrorInfo`` with a stable reason (``QUOTA_EXCEEDED``, ``REQUEST_ID_REUSED``...)
and its metadata, and, for malformed input, a ``BadRequest`` naming the field. One exception
class carries them all; callers branch on ``error.reason``, never on the message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

#: The ErrorInfo domain of every error of the ledger's API.
ERROR_DOMAIN = "voucherledger.v1"

#: The reason of a write whose deadline passed before its answer: it may have been made.
OUTCOME_UNKNOWN_REASON = "LEDGER_OUTCOME_UNKNOWN"

#: Codes after which a write may or may not have been made: retry it with the same request id.
OUTCOME_UNKNOWN_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})

_DETAILS_KEY = "grpc-status-details-bin"
_CODES_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class FieldViolation:
    """One field of the request that the ledger found malformed."""

    field: str
    description: str


class LedgerError(Exception):
    """A call the ledger refused, or that did not get an answer.

    ``reason`` is the ErrorInfo reason (``None`` when the status had no details, as for a
    transport failure); ``metadata`` its key/value pairs; ``field_violations`` the
    BadRequest's.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: Optional[str] = None,
        domain: Optional[str] = None,
        metadata: Optional[Dict[str, str]] = None,
        field_violations: Optional[List[FieldViolation]] = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.domain = domain
        self.metadata: Dict[str, str] = dict(metadata or {})
        self.field_violations: List[FieldViolation] = list(field_violations or [])
        super().__init__(str(self))

    def __str__(self) -> str:
        reason = f" {self.reason}" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"LedgerError(code={self.code.name}, reason={self.reason!r}, "
            f"message={self.message!r}, metadata={self.metadata!r})"
        )

    @property
    def outcome_unknown(self) -> bool:
        """Whether the call may have been carried out all the same (retry with the same id)."""
        return self.code in OUTCOME_UNKNOWN_CODES or self.reason == OUTCOME_UNKNOWN_REASON

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> "LedgerError":
        """From a ``google.rpc.Status``: a refused call's, or a refused batch item's."""
        code = _CODES_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN)
        reason = domain = None
        metadata: Dict[str, str] = {}
        violations: List[FieldViolation] = []
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend(
                    FieldViolation(violation.field, violation.description)
                    for violation in bad_request.field_violations
                )
        return cls(code, status.message, reason, domain, metadata, violations)

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "LedgerError":
        """From what grpcio raised: decodes ``grpc-status-details-bin`` when the call has it."""
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        message = error.details() if hasattr(error, "details") else str(error)
        trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
        for key, value in trailers or ():
            if key == _DETAILS_KEY and isinstance(value, bytes):
                try:
                    status = status_pb2.Status.FromString(value)
                except Exception:  # noqa: BLE001 - undecodable details: keep code and message
                    break
                decoded = cls.from_status(status)
                # The status line is authoritative: the details repeat it.
                return cls(
                    code or decoded.code,
                    message or decoded.message,
                    decoded.reason,
                    decoded.domain,
                    decoded.metadata,
                    decoded.field_violations,
                )
        return cls(code=code or grpc.StatusCode.UNKNOWN, message=message or "")

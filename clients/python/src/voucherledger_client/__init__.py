"""Python client of voucher-ledger: the generated stubs (package ``voucherledger``, built from
the repository's ``proto/`` folder) and a thin wrapper that names request ids, retries unknown
outcomes with the same id and raises the ledger's refusals as :class:`LedgerError`."""

from .client import LedgerClient, item_error, item_errors, new_request_id
from .errors import ERROR_DOMAIN, OUTCOME_UNKNOWN_REASON, FieldViolation, LedgerError

__all__ = [
    "ERROR_DOMAIN",
    "OUTCOME_UNKNOWN_REASON",
    "FieldViolation",
    "LedgerClient",
    "LedgerError",
    "item_error",
    "item_errors",
    "new_request_id",
]

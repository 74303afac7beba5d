"""Map SDK errors to the pipeline's typed errors."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from medscribe.domain.errors import PermanentError, TransientError

_TRANSIENT_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "LimitExceededException",
    "SlowDown", "ServiceUnavailable", "InternalServerError", "InternalFailure", "InternalError",
    "TransactionConflictException", "RequestTimeout", "RequestTimeoutException",
})


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def classify(exc: Exception) -> TransientError | PermanentError:
    """Transient for throttling, 5xx and connection trouble; permanent otherwise."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _TRANSIENT_CODES or status >= 500 or status == 429:
            return TransientError(f"{code or status}")
        return PermanentError(code or str(status))
    if isinstance(exc, BotoCoreError):
        return TransientError(type(exc).__name__)
    return PermanentError(type(exc).__name__)

"""Typed errors: the type decides whether work is retried."""


class MedscribeError(Exception):
    """Base class of the pipeline's own errors."""


class TransientError(MedscribeError):
    """Retry later (throttling, 5xx, timeouts): the message returns to its queue."""


class PermanentError(MedscribeError):
    """Retrying cannot help: record the reason on the encounter and stop."""

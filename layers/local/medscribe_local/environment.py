"""Point this process's boto3 clients at the local emulator (kept free of moto so clients start fast).

Transcribe is the exception: its clients go to the local Transcribe service (transcribe_service.py)
through botocore's service-specific endpoint variable, while every other service stays on the
emulator's AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from medscribe.adapters import aws_clients

REGION = "us-east-1"
TRANSCRIBE_ENDPOINT_ENV = "AWS_ENDPOINT_URL_TRANSCRIBE"
BEDROCK_ENDPOINT_ENV = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"


def aws_environment(endpoint: str) -> dict[str, str | None]:
    """Variables that send every boto3 client to the emulator with throwaway credentials.

    Profiles, session tokens and per-service endpoint overrides are removed so nothing can reach AWS;
    the one kept is a Bedrock Runtime endpoint on this machine (a local Converse endpoint such as
    medscribe_local.converse_endpoint), which the runtime's document stage then uses.
    """
    values: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's throwaway credential  # nosec B105
        "AWS_SESSION_TOKEN": None,  # unset, not a value  # nosec B105
        "AWS_SECURITY_TOKEN": None,  # unset, not a value  # nosec B105
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }
    values.update({name: None for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")
                   and not (name == BEDROCK_ENDPOINT_ENV and is_loopback(os.environ[name]))})
    return values


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def patch_environ(values: Mapping[str, str | None]) -> Callable[[], None]:
    """Set (or, for None, unset) environment variables; returns a function that restores them."""
    previous = {name: os.environ.get(name) for name in values}

    def apply(target: Mapping[str, str | None]) -> None:
        for name, value in target.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    apply(values)
    return lambda: apply(previous)


def _redirect(values: Mapping[str, str | None]) -> Callable[[], None]:
    """Set `values` and drop cached clients (they keep the endpoint they were made with)."""
    restore_environ = patch_environ(values)
    aws_clients.reset()

    def restore() -> None:
        restore_environ()
        aws_clients.reset()

    return restore


def connect(endpoint: str) -> Callable[[], None]:
    """Point this process's boto3 clients at the emulator; returns a function that undoes it."""
    return _redirect(aws_environment(endpoint))


def route_transcribe(endpoint: str) -> Callable[[], None]:
    """Send this process's Transcribe clients to `endpoint` (the local Transcribe service); returns a
    function that undoes it. botocore reads AWS_ENDPOINT_URL_<SERVICE> before AWS_ENDPOINT_URL."""
    return _redirect({TRANSCRIBE_ENDPOINT_ENV: endpoint})

"""Delivery of a FHIR document Bundle to a FHIR R4 server, such as an AWS HealthLake data store
(`https://healthlake.<region>.amazonaws.com/datastore/<id>/r4/`): off by default, used only by
`medscribe fhir <id> --deliver URL` with the operator's AWS credentials (no function delivers, so the
stack grants no HealthLake access; the caller needs `healthlake:CreateResource` on that data store).

One `POST <base>/Bundle`, SigV4-signed for the service `healthlake` (the region from the HealthLake host,
else the AWS session's), with `If-None-Exist: identifier=<the bundle identifier>` so that a server
supporting conditional create keeps one copy of a re-delivered document. Only https is accepted, except
for a server on this machine (127.0.0.1 / localhost). The server's answer body is never read into a
message: it may echo PHI. Errors are typed: 429 and 5xx TransientError, anything else PermanentError.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from medscribe.domain.errors import PermanentError, TransientError

SERVICE = "healthlake"
TIMEOUT_SECONDS = 30
FHIR_JSON = "application/fhir+json"
_HEALTHLAKE_HOST = re.compile(r"healthlake\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_url(base_url: str) -> str:
    """The base URL without a trailing slash; ValueError for anything but https (or http on this machine)."""
    parts = urlsplit(base_url)
    local = parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or local):
        raise ValueError("the FHIR server URL must be https:// (http:// only for 127.0.0.1 or localhost)")
    return base_url.rstrip("/")


class FhirServer:
    def __init__(self, base_url: str, *, session: Any | None = None) -> None:
        self.base_url = check_url(base_url)
        self._session = session

    def _signed_headers(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        import boto3
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        session = self._session or boto3.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise PermanentError("no AWS credentials to sign the FHIR request with")
        host = _HEALTHLAKE_HOST.search(urlsplit(url).hostname or "")
        region = host.group(1) if host else session.region_name
        if not region:
            raise PermanentError("no AWS region for the FHIR server (set AWS_REGION)")
        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
        return dict(request.headers.items())

    def deliver(self, bundle: dict[str, Any]) -> str:
        """POST the bundle; the Location the server answers (or "" when it names none)."""
        url = f"{self.base_url}/Bundle"
        body = json.dumps(bundle, ensure_ascii=False).encode("utf-8")
        identifier = bundle.get("identifier") or {}
        headers = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON}
        if identifier.get("value"):
            headers["If-None-Exist"] = f"identifier={identifier.get('system', '')}|{identifier['value']}"
        request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - scheme checked  # nosec B310
                                         headers=self._signed_headers(url, body, headers))
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - scheme checked  # nosec B310
                return str(response.headers.get("Location") or response.headers.get("Content-Location") or "")
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientError(f"the FHIR server answered {exc.code}; try again") from None
            raise PermanentError(f"the FHIR server refused the bundle ({exc.code})") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"cannot reach the FHIR server ({type(exc).__name__})") from None

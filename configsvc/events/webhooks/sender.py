"""One webhook request: POST the body, report the status or why there was none.

``http.client`` in a worker thread rather than an HTTP library: one request
with a timeout and no redirects is all a delivery needs (a redirect could
lead past the allow-list, so a 3xx is a failed attempt like any non-2xx).
"""

from __future__ import annotations

import asyncio
import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

_RESPONSE_READ_MAX = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: the HTTP status (0 if none) and an error text if it failed."""

    status: int
    error: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    parts = urlsplit(url)
    host = parts.hostname or ""
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(host, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(_RESPONSE_READ_MAX)
        status = int(response.status)
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(0, f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome(status, "")
    return Outcome(status, f"receiver answered HTTP {status}")


async def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
    return await asyncio.to_thread(_post, url, body, headers, timeout)

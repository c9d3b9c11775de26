"""Tiny HTTP client for readiness probes and OpenBao setup calls.

Plain urllib keeps the devstack free of extra runtime dependencies. Proxies are
disabled on purpose: a developer's ``http_proxy`` would otherwise route requests
for 127.0.0.1 through the proxy and every probe would fail or hang.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpResponse", "request"]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """Status and body of a response; non-2xx statuses are returned, not raised."""

    status: int
    body: bytes

    def json(self) -> Any:
        """Decode the body as JSON (``None`` for an empty body)."""
        if not self.body:
            return None
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    payload: Any = None,
    timeout: float = 2.0,
) -> HttpResponse:
    """Send one request; raise ``OSError`` (incl. ``URLError``) only if nothing answered."""
    data = None if payload is None else json.dumps(payload).encode()
    all_headers = dict(headers or {})
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=all_headers, method=method)
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return HttpResponse(status=resp.status, body=resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return HttpResponse(status=exc.code, body=exc.read())
    except http.client.HTTPException as exc:
        # Something answered but not with valid HTTP (a server still starting
        # up, or a different protocol on the port): treat it as "not reachable".
        raise ConnectionError(f"invalid HTTP response from {url}: {exc!r}") from exc

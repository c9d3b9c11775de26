"""HTTP transport adapters: what every HTTP route shares.

``HttpSettings`` (timeouts, body and connection limits), ``HttpListener`` (one hardened
aiohttp listener), ``guarded`` (the wrapper each route runs in: bad headers, typed
errors and bugs answered cleanly), ``read_body``/``read_json`` (bodies bounded in time,
size and nesting, gzip/deflate decoded safely) and ``status_response``
(``google.rpc.Status`` JSON with the standard HTTP mapping). The OFREP routes
(``configsvc.http.ofrep``) are the first users; the REST gateway uses the same pieces.
"""

from configsvc.http.body import read_body, read_json
from configsvc.http.server import (
    HttpListener,
    Renderer,
    check_credentials,
    check_headers,
    guarded,
)
from configsvc.http.settings import HttpSettings
from configsvc.http.status import HttpRequestError, status_response

__all__ = [
    "HttpListener",
    "HttpRequestError",
    "HttpSettings",
    "Renderer",
    "check_credentials",
    "check_headers",
    "guarded",
    "read_body",
    "read_json",
    "status_response",
]

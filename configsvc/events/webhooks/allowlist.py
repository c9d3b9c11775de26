"""The host allow-list: webhooks can only reach hosts an operator listed.

Entries are host names or IP literals (``hooks.example.com``, ``10.0.0.7``,
``::1``) or ``*.domain`` for any subdomain of ``domain`` (not ``domain``
itself). Matching is on the URL's host, case-insensitively, any port. The
check runs at registration and again before each request, so removing a host
from the list stops deliveries to it at once. Names are matched, not the
addresses they resolve to: list names whose DNS you control.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

URL_MAX = 2048


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    host = normalize_host(host)
    for entry in allowed:
        pattern = normalize_host(entry)
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable webhook URL (form only); None when it is."""
    if not url:
        return "is required"
    if len(url) > URL_MAX:
        return f"is {len(url)} characters; the limit is {URL_MAX}"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        return f"is not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if parts.username or parts.password:
        return "must not carry credentials (use the signing secret)"
    if not parts.hostname:
        return "has no host"
    if parts.fragment:
        return "must not have a #fragment"
    return None


def target_problem(url: str, allowed: Sequence[str]) -> str | None:
    """Why no request may go to ``url``: a bad URL or a host off the allow-list."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    host = urlsplit(url).hostname or ""
    if not host_allowed(host, allowed):
        return f"host {host!r} is not on the allow-list"
    return None

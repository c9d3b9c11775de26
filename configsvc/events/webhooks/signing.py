"""The signature a receiver checks: HMAC-SHA256 over a timestamp and the body.

Header (one per request)::

    X-Configsvc-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The receiver recomputes the HMAC over the raw body it received, compares in
constant time, and rejects a timestamp more than a few minutes from its own
clock, so a captured request cannot be replayed later. The timestamp changes
with every attempt; the delivery id (``X-Configsvc-Delivery-Id``) stays the
same, for de-duplication.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Configsvc-Signature"
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, now: float, tolerance: int = DEFAULT_TOLERANCE
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its time is within ``tolerance``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))

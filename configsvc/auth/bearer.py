"""JWT bearer tokens checked against a JWKS (PyJWT with ``cryptography``).

Signature, issuer, audience, expiry and not-before are all required. The
JWKS comes from a file (re-read when its modification time changes, so key
rotation needs no restart) or a URL (PyJWT's ``PyJWKClient`` with its cache;
fetched off the event loop). Verified tokens are cached until they expire,
so a long-lived client pays for the signature check once.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt

from configsvc.auth.principal import JWT, Principal
from configsvc.auth.settings import JwtSettings
from configsvc.errors import UnauthenticatedError

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
_CACHE_MAX = 10_000


class JwtVerifier:
    """Turns a bearer JWT into a principal, or raises UNAUTHENTICATED."""

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        self._file_mtime = -1.0
        self._keys: dict[str, Any] = {}
        self._client = (jwt.PyJWKClient(settings.jwks_url, cache_keys=True)
                        if settings.jwks_url else None)
        self._cache: dict[str, Principal] = {}

    def _file_keys(self) -> dict[str, Any]:
        path = self._settings.jwks_file
        assert path is not None
        try:
            mtime = path.stat().st_mtime
        except OSError as exc:
            raise UnauthenticatedError(f"JWKS file unreadable on the server: {exc}") from None
        if mtime != self._file_mtime:
            document = json.loads(path.read_text())
            keys: dict[str, Any] = {}
            for jwk in jwt.PyJWKSet.from_dict(document).keys:
                keys[jwk.key_id or ""] = jwk.key
            self._keys = keys
            self._file_mtime = mtime
        return self._keys

    async def _signing_key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid") or ""
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the bearer token is not a JWT: {exc}") from None
        if self._client is not None:
            try:
                found = await asyncio.to_thread(self._client.get_signing_key, kid)
            except jwt.PyJWTError as exc:
                raise UnauthenticatedError(f"no JWKS key for the token: {exc}") from None
            return found.key
        keys = self._file_keys()
        if kid in keys:
            return keys[kid]
        if not kid and len(keys) == 1:
            return next(iter(keys.values()))
        raise UnauthenticatedError(f"no JWKS key with kid {kid!r}")

    async def verify(self, token: str) -> Principal:
        principal = self._cache.get(token)
        if principal is not None:
            if principal.expires_at is not None and time.time() < principal.expires_at:
                return principal
            del self._cache[token]
        key = await self._signing_key(token)
        settings = self._settings
        try:
            claims = jwt.decode(
                token, key, algorithms=ALGORITHMS, audience=settings.audience or None,
                issuer=settings.issuer, leeway=settings.leeway,
                options={"require": ["exp", "iss", settings.subject_claim]
                         + (["aud"] if settings.audience else [])})
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"the bearer token is not valid: {exc}") from None
        subject = claims.get(settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise UnauthenticatedError(
                f"the bearer token has no {settings.subject_claim!r} claim")
        principal = Principal(f"jwt:{subject}", JWT, float(claims["exp"]))
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = principal
        return principal

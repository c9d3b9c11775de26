"""JWT bearer tokens checked against a JWKS (PyJWT with ``cryptography``).

Signature, issuer, audience, expiry and not-before are all required. The
JWKS comes from a file (re-read when its modification time changes, so key
rotation needs no restart) or a URL (PyJWT's ``PyJWKClient`` with its cache;
fetched off the event loop). Verified tokens are cached until they expire,
so a long-lived client pays for the signature check once.

Bad input is always UNAUTHENTICATED with a plain reason, never an exception
escaping to the caller: a JWKS file caught mid-rotation (half written, empty,
no usable key) keeps the last good key set serving and is logged once per file
version; a token whose header or claims are malformed or out of range (an
``exp`` of ``10**400``, ``Infinity``, a non-string ``kid``) is refused as invalid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

import jwt

from configsvc.auth.settings import JwtSettings
from configsvc.errors import UnauthenticatedError
from configsvc.rpc.principal import JWT, Principal

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
_CACHE_MAX = 10_000
#: Latest ``exp`` accepted: 9999-12-31T23:59:59Z, the last second a Timestamp can hold.
EXP_MAX = 253_402_300_799
#: What decoding an untrusted token can raise besides PyJWT's own errors (its JSON
#: parser and claim conversions: ``int(float("inf"))``, a 5,000-digit integer, ...).
_TOKEN_ERRORS = (
    jwt.PyJWTError,
    ValueError,
    TypeError,
    OverflowError,
    RecursionError,
    KeyError,
    AttributeError,
)


_UNREAD = object()


def _file_version(stat: Any) -> tuple[int, int, int]:
    """What identifies one version of the JWKS file: a rewrite changes its modification
    time or, within one tick of a coarse clock, its size or inode (an atomic rename)."""
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def load_jwks(text: str) -> dict[str, Any]:
    """kid -> key of a JWKS document; raises (anything) when it has no usable key."""
    keys: dict[str, Any] = {}
    for jwk in jwt.PyJWKSet.from_dict(json.loads(text)).keys:
        keys[jwk.key_id or ""] = jwk.key
    if not keys:
        raise ValueError("the JWK Set has no usable key")
    return keys


class JwtVerifier:
    """Turns a bearer JWT into a principal, or raises UNAUTHENTICATED."""

    def __init__(self, settings: JwtSettings) -> None:
        self._settings = settings
        #: The JWKS file version last read (None: unreadable; ``_UNREAD``: not yet read).
        self._file_version: object = _UNREAD
        self._keys: dict[str, Any] = {}
        #: Why the JWKS file is not usable now ("" when it is), for refusals and logs.
        self._file_problem = ""
        self._client = (
            jwt.PyJWKClient(settings.jwks_url, cache_keys=True) if settings.jwks_url else None
        )
        self._cache: dict[str, Principal] = {}

    def _file_keys(self) -> dict[str, Any]:
        """The key set of the JWKS file: re-read when the file changes; a version that
        cannot be used (half written, empty, no usable key, unreadable) is logged once
        and the last good key set stays in force."""
        path = self._settings.jwks_file
        assert path is not None
        try:
            version: tuple[int, int, int] | None = _file_version(path.stat())
        except OSError as exc:
            version, problem = None, f"cannot be read ({exc.strerror or exc})"
        else:
            problem = ""
        if version != self._file_version:
            self._file_version = version
            cause = problem
            if version is not None:
                try:
                    self._keys = load_jwks(path.read_text())
                except Exception as exc:  # whatever is wrong with it, the last good set stays
                    problem = "is not a usable JWKS"
                    cause = f"{problem} ({type(exc).__name__}: {exc})"
            if problem:
                log.warning(
                    "JWKS file %s %s; %s",
                    path,
                    cause,
                    f"keeping the previous {len(self._keys)} key(s)"
                    if self._keys
                    else "no JWT can be verified until it is fixed",
                )
            elif not problem and self._file_problem:
                log.info("JWKS file %s is usable again (%d keys)", path, len(self._keys))
            self._file_problem = problem
        if not self._keys:
            raise UnauthenticatedError(
                "the server has no usable JWKS key to verify bearer tokens with "
                f"(its JWKS file {self._file_problem or 'holds no key'}); ask the operator"
            )
        return self._keys

    async def _signing_key(self, token: str) -> Any:
        try:
            kid = jwt.get_unverified_header(token).get("kid") or ""
        except _TOKEN_ERRORS as exc:
            raise UnauthenticatedError(f"the bearer token is not a JWT: {exc}") from None
        if not isinstance(kid, str):
            raise UnauthenticatedError("the bearer token's kid header is not a string")
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
                token,
                key,
                algorithms=ALGORITHMS,
                audience=settings.audience or None,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={
                    "require": ["exp", "iss", settings.subject_claim]
                    + (["aud"] if settings.audience else [])
                },
            )
        except _TOKEN_ERRORS as exc:
            raise UnauthenticatedError(f"the bearer token is not valid: {exc}") from None
        expires = claims["exp"]
        if (
            isinstance(expires, bool)
            or not isinstance(expires, int | float)
            or (isinstance(expires, float) and not math.isfinite(expires))
            or expires > EXP_MAX
        ):  # an int past EXP_MAX never reaches float()
            raise UnauthenticatedError(
                "the bearer token is not valid: its exp claim is not a time before the year 10000"
            )
        subject = claims.get(settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise UnauthenticatedError(f"the bearer token has no {settings.subject_claim!r} claim")
        principal = Principal(f"jwt:{subject}", JWT, float(expires))
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[token] = principal
        return principal

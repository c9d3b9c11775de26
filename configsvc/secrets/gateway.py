"""The secrets gateway: what the API layer calls on writes and on resolving reads.

Writes (``prepare_write``): every reference must exist in Vault (the field in
the named or newest version), and the places a key's JSON Schema marks
``x-sensitive`` are replaced by transit ciphertext, so etcd never holds
their plaintext. Reads (``resolve_texts``): the caller needs the secret-read
permission; every access is audited before any plaintext is returned;
secrets come from the TTL cache or Vault (one fetch per secret in flight).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from configsvc.errors import FailedPreconditionError, NotFoundError, PermissionDeniedError
from configsvc.model.keys import ConfigKey
from configsvc.resolve.jsonvalue import JsonValue, canonical_json, parse_value
from configsvc.secrets.access import DENIED, GRANTED, Access, AccessAuditor, AccessPolicy
from configsvc.secrets.cache import CacheKey, SecretCache
from configsvc.secrets.refs import (
    Ciphertext,
    SecretRef,
    might_hold_secrets,
    substitute,
    walk,
)
from configsvc.secrets.vault import SecretVersion, VaultClient
from configsvc.validate import pointer as jsonpointer

log = logging.getLogger(__name__)

NO_VAULT = (
    "this server has no Vault configured (--vault-addr), so values cannot hold secret "
    "references or sensitive fields"
)


class SensitiveFields(Protocol):
    """Which places of a value are sensitive: ``SchemaRegistry.sensitive_pointers`` fits."""

    def sensitive_pointers(self, key: ConfigKey, value: object) -> list[str]: ...


class NoSensitiveFields:
    """Until schemas are registered nothing is marked sensitive."""

    def sensitive_pointers(self, key: ConfigKey, value: object) -> list[str]:
        return []


@dataclass(frozen=True)
class Stored:
    """One stored value to resolve: where it lives and its JSON text."""

    tenant: str
    key: str
    text: str


class SecretGateway:
    """Checks, encrypts and resolves secrets for the API layer."""

    def __init__(
        self,
        vault: VaultClient | None,
        policy: AccessPolicy,
        auditor: AccessAuditor,
        cache: SecretCache,
        sensitive: SensitiveFields | None = None,
    ) -> None:
        self.vault = vault
        self.policy = policy
        self.auditor = auditor
        self.cache = cache
        self.sensitive: SensitiveFields = sensitive or NoSensitiveFields()
        self._inflight: dict[CacheKey, asyncio.Future[SecretVersion]] = {}
        #: Told (mount, path, version) whenever a newest-version reference is served:
        #: the rotation poller's baseline.
        self.on_fetch: list[Callable[[str, str, int], None]] = []

    def _vault(self) -> VaultClient:
        if self.vault is None:
            raise FailedPreconditionError(NO_VAULT)
        return self.vault

    # ------------------------------------------------------------------- writes

    async def prepare_write(self, key: ConfigKey, text: str, timeout: float) -> str:
        """The text to store for ``text``: references checked, sensitive places encrypted."""
        if isinstance(self.sensitive, NoSensitiveFields) and not might_hold_secrets(text):
            return text
        return await self.prepare_parsed(key, text, parse_value(text), timeout)

    async def prepare_parsed(
        self, key: ConfigKey, text: str, value: JsonValue, timeout: float
    ) -> str:
        """``prepare_write`` for a text its caller has parsed already (``parse_value``)."""
        sensitive_possible = not isinstance(self.sensitive, NoSensitiveFields)
        holds_secrets = might_hold_secrets(text)
        if not sensitive_possible and not holds_secrets:
            return text
        # Without the markers' text there is no reserved form, so nothing to walk.
        found = list(walk(value)) if holds_secrets else []  # validates the reserved forms
        refs = sorted({f for _, f in found if isinstance(f, SecretRef)}, key=str)
        if found:
            vault = self._vault()
            await asyncio.gather(*(vault.check_field(ref, timeout) for ref in refs))
        pointers = self.sensitive.sensitive_pointers(key, value) if sensitive_possible else []
        plain = [p for p in pointers if not _is_special_at(found, p)]
        if not plain:
            return text
        vault = self._vault()
        for place in plain:
            inner = jsonpointer.resolve(value, place)
            if inner is jsonpointer.MISSING:
                continue
            sealed = await vault.encrypt(canonical_json(inner).encode(), timeout)
            value = _replace_at(value, place, sealed.form())
        return canonical_json(value)

    # -------------------------------------------------------------------- reads

    def check_permission(self, actor: str, tenant: str) -> bool:
        return self.policy.allows(actor, tenant)

    async def deny(
        self,
        actor: str,
        tenant: str,
        refs: Iterable[str],
        config_key: str,
        method: str,
        timeout: float,
    ) -> PermissionDeniedError:
        """Audit the denied accesses and return the error to raise."""
        await self.auditor.record(
            [Access(tenant, actor, ref, DENIED, config_key, method) for ref in refs], timeout
        )
        return PermissionDeniedError(
            f"{actor!r} may not read secrets of tenant {tenant!r}: ask for the secret-read "
            f"permission ({self.policy.hint}), or read without resolve_secrets "
            "to get the references"
        )

    async def resolve_texts(
        self, stored: Sequence[Stored], *, actor: str, method: str, timeout: float
    ) -> list[str]:
        """Each text with references and ciphertexts replaced by plaintext (canonical JSON).

        PERMISSION_DENIED (audited) when the caller may not read any of them;
        texts without secrets come back unchanged and are not audited.
        """
        parsed: list[tuple[int, JsonValue, list[tuple[str, SecretRef | Ciphertext]]]] = []
        for index, item in enumerate(stored):
            if not might_hold_secrets(item.text):
                continue
            value = parse_value(item.text)
            found = list(walk(value))
            if found:
                parsed.append((index, value, found))
        if not parsed:
            return [item.text for item in stored]
        denied = [
            (stored[i], found)
            for i, _, found in parsed
            if not self.policy.allows(actor, stored[i].tenant)
        ]
        if denied:
            item, found = denied[0]
            raise await self.deny(
                actor, item.tenant, sorted({_label(f) for _, f in found}), item.key, method, timeout
            )
        vault = self._vault()
        refs = sorted(
            {f for _, _, found in parsed for _, f in found if isinstance(f, SecretRef)}, key=str
        )
        versions = dict(
            zip(
                refs, await asyncio.gather(*(self.fetch(ref, timeout) for ref in refs)), strict=True
            )
        )
        ciphers = sorted(
            {f for _, _, found in parsed for _, f in found if isinstance(f, Ciphertext)},
            key=lambda c: c.ciphertext,
        )
        plain = dict(
            zip(
                ciphers,
                await asyncio.gather(*(vault.decrypt(c, timeout) for c in ciphers)),
                strict=True,
            )
        )
        accesses = [
            Access(stored[i].tenant, actor, _label(f), GRANTED, stored[i].key, method)
            for i, _, found in parsed
            for f in sorted({f for _, f in found}, key=_label)
        ]
        await self.auditor.record(accesses, timeout)

        def replace(special: SecretRef | Ciphertext, _form: JsonValue) -> JsonValue:
            if isinstance(special, SecretRef):
                data = versions[special].data
                if special.field not in data:
                    raise NotFoundError(
                        "secret field",
                        str(special),
                        f"Vault secret {special.mount}/{special.path} (version "
                        f"{versions[special].version}) has no field "
                        f"{special.field!r} any more",
                    )
                return _json(data[special.field])
            return parse_value(plain[special].decode())

        texts = [item.text for item in stored]
        for index, value, _ in parsed:
            texts[index] = canonical_json(substitute(value, replace))
        return texts

    async def fetch(self, ref: SecretRef, timeout: float) -> SecretVersion:
        """The KV version ``ref`` needs: cache, else one Vault read shared by concurrent callers."""
        key: CacheKey = (ref.mount, ref.path, ref.version)
        found = self.cache.get(key)
        if found is None:
            found = await self._read(key, timeout)
        if ref.version is None:
            # The version a caller got is the rotation baseline (cached or not).
            for callback in self.on_fetch:
                callback(ref.mount, ref.path, found.version)
        return found

    async def _read(self, key: CacheKey, timeout: float) -> SecretVersion:
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._vault().read(*key, timeout))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        found = await asyncio.shield(pending)
        self.cache.put(key, found)
        return found


def _label(found: SecretRef | Ciphertext) -> str:
    """How audit records and messages name a secret: the reference, never a value."""
    return str(found) if isinstance(found, SecretRef) else f"transit:{found.key}"


def _json(value: Any) -> JsonValue:
    """A KV field (decoded by hvac with floats) as an exact JSON value."""
    return parse_value(json.dumps(value)) if isinstance(value, float | Decimal) else value


def _is_special_at(found: list[tuple[str, SecretRef | Ciphertext]], place: str) -> bool:
    """True when ``place`` is, or lies inside, a reference or ciphertext already."""
    return any(jsonpointer.is_within(place, where) for where, _ in found)


def _replace_at(value: JsonValue, place: str, new: JsonValue) -> JsonValue:
    """A copy of ``value`` with the value at JSON pointer ``place`` replaced by ``new``."""
    tokens = jsonpointer.parse(place)
    if not tokens:
        return new

    def go(current: JsonValue, depth: int) -> JsonValue:
        if depth == len(tokens):
            return new
        token = tokens[depth]
        if isinstance(current, dict):
            copy = dict(current)
            copy[token] = go(current[token], depth + 1)
            return copy
        if isinstance(current, list):
            items = list(current)
            items[int(token)] = go(current[int(token)], depth + 1)
            return items
        return current  # pragma: no cover - the pointer came from this value

    return go(value, 0)

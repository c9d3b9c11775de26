"""An asyncio facade over ``hvac`` for the few Vault calls configsvc makes.

Decision: hvac (the chosen client library) is synchronous, so each call runs
in a small dedicated thread pool, bounded twice: hvac's own HTTP timeout and
``asyncio.wait_for`` around the thread. A raw async HTTP client would save the
threads but re-implement login flows (AppRole, Kubernetes), TLS options and
the KV v2 / transit response shapes hvac already gets right; the calls are
few (a cache sits in front of reads), so the threads cost little.

Every failure becomes a typed configsvc error whose message names Vault and
the reference, never a value: unreachable, 5xx, sealed or a timeout is
UNAVAILABLE (backend "Vault"); 404 or a deleted/destroyed version is
NOT_FOUND; 403 is PERMISSION_DENIED. A 401/403 with AppRole or Kubernetes
auth logs in again once and retries, so an expired token or a restarted
Vault recovers by itself.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from configsvc.errors import (
    BackendUnavailableError,
    ConfigsvcError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from configsvc.secrets.refs import Ciphertext, SecretRef
from configsvc.secrets.settings import VaultSettings

log = logging.getLogger(__name__)

BACKEND = "Vault"
T = TypeVar("T")


@dataclass(frozen=True)
class SecretVersion:
    """The data of one KV v2 version (plaintext: kept in memory only, never logged)."""

    version: int
    data: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"SecretVersion(version={self.version}, fields={sorted(self.data)})"


class VaultClient:
    """Async calls to Vault KV v2 and transit; one instance per server process."""

    def __init__(self, settings: VaultSettings, *, workers: int = 4) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vault")
        self._login_lock = threading.Lock()
        verify: bool | str = True
        if settings.tls_skip_verify:
            log.warning("TLS verification of Vault is off (--vault-tls-skip-verify)")
            verify = False
        elif settings.ca_file is not None:
            verify = str(settings.ca_file)
        cert = None
        if settings.client_cert_file is not None and settings.client_key_file is not None:
            cert = (str(settings.client_cert_file), str(settings.client_key_file))
        self._client = hvac.Client(
            url=settings.address,
            token=settings.auth.token or None,
            verify=verify,
            cert=cert,
            timeout=settings.timeout,
            namespace=settings.namespace or None,
        )
        self._logged_in = settings.auth.method == "token"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.adapter.close()

    # ------------------------------------------------------------------ plumbing

    def _login(self) -> None:
        auth = self.settings.auth
        with self._login_lock:
            if auth.method == "approle":
                self._client.auth.approle.login(
                    role_id=auth.approle_role_id,
                    secret_id=auth.approle_secret_id,
                    mount_point=auth.approle_mount,
                )
            elif auth.method == "kubernetes":
                jwt = auth.kubernetes_jwt_file.read_text().strip()
                self._client.auth.kubernetes.login(
                    role=auth.kubernetes_role, jwt=jwt, mount_point=auth.kubernetes_mount
                )
            self._logged_in = True
        log.info("logged in to Vault", extra={"method": auth.method})

    def _with_login(self, call: Callable[[], T]) -> T:
        """Run in a worker thread: log in if needed, retry once after a 401/403."""
        if not self._logged_in:
            self._login()
        try:
            return call()
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            if self.settings.auth.method == "token":
                raise
            self._logged_in = False
            self._login()
            return call()

    async def _run(self, what: str, call: Callable[[], T], timeout: float) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, self._with_login, call), timeout=max(0.01, timeout)
            )
        except ConfigsvcError:
            raise
        except (TimeoutError, requests.exceptions.Timeout):
            raise BackendUnavailableError(
                BACKEND, f"{what}: no answer within the deadline from {self.settings.address}"
            ) from None
        except requests.exceptions.RequestException as exc:
            raise BackendUnavailableError(
                BACKEND, f"{what}: cannot reach {self.settings.address} ({type(exc).__name__})"
            ) from None
        except hvac.exceptions.InvalidPath:
            raise NotFoundError("secret", what, f"Vault has no {what}") from None
        except (hvac.exceptions.Forbidden, hvac.exceptions.Unauthorized):
            raise PermissionDeniedError(
                f"Vault denied configsvc access to {what}: grant its "
                f"{self.settings.auth.method} login a policy that allows it"
            ) from None
        except (
            hvac.exceptions.VaultDown,
            hvac.exceptions.InternalServerError,
            hvac.exceptions.BadGateway,
            hvac.exceptions.RateLimitExceeded,
        ) as exc:
            raise BackendUnavailableError(
                BACKEND, f"{what}: {type(exc).__name__} from {self.settings.address}"
            ) from None
        except hvac.exceptions.InvalidRequest:
            raise InvalidArgumentError.single(
                "value", f"Vault rejected the request for {what}"
            ) from None
        except (hvac.exceptions.VaultError, OSError) as exc:
            raise BackendUnavailableError(
                BACKEND, f"{what}: {type(exc).__name__} from {self.settings.address}"
            ) from None

    # ----------------------------------------------------------------------- KV

    async def read(
        self, mount: str, path: str, version: int | None, timeout: float
    ) -> SecretVersion:
        """One KV v2 version (the newest when ``version`` is None)."""
        what = f"secret {mount}/{path}" + ("" if version is None else f" version {version}")

        def call() -> SecretVersion:
            response = self._client.secrets.kv.v2.read_secret_version(
                path=path, version=version, mount_point=mount, raise_on_deleted_version=True
            )
            body = response["data"]
            return SecretVersion(int(body["metadata"]["version"]), dict(body["data"] or {}))

        return await self._run(what, call, timeout)

    async def current_version(self, mount: str, path: str, timeout: float) -> int:
        """The newest version number of a KV v2 secret (metadata only, no data)."""

        def call() -> int:
            response = self._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)
            return int(response["data"]["current_version"])

        return await self._run(f"secret {mount}/{path}", call, timeout)

    async def check_field(self, ref: SecretRef, timeout: float) -> SecretVersion:
        """The version ``ref`` names, NOT_FOUND when it lacks ``ref.field``."""
        found = await self.read(ref.mount, ref.path, ref.version, timeout)
        if ref.field not in found.data:
            raise NotFoundError(
                "secret field",
                str(ref),
                f"Vault secret {ref.mount}/{ref.path} (version "
                f"{found.version}) has no field {ref.field!r}",
            )
        return found

    # ------------------------------------------------------------------ transit

    async def encrypt(self, plaintext: bytes, timeout: float) -> Ciphertext:
        key, mount = self.settings.transit_key, self.settings.transit_mount

        def call() -> Ciphertext:
            response = self._client.secrets.transit.encrypt_data(
                name=key, plaintext=base64.b64encode(plaintext).decode(), mount_point=mount
            )
            return Ciphertext(key, str(response["data"]["ciphertext"]))

        return await self._run(f"transit key {mount}/{key}", call, timeout)

    async def decrypt(self, ciphertext: Ciphertext, timeout: float) -> bytes:
        mount = self.settings.transit_mount

        def call() -> bytes:
            response = self._client.secrets.transit.decrypt_data(
                name=ciphertext.key, ciphertext=ciphertext.ciphertext, mount_point=mount
            )
            return base64.b64decode(response["data"]["plaintext"])

        return await self._run(f"transit key {mount}/{ciphertext.key}", call, timeout)

    async def rewrap(self, ciphertext: Ciphertext, timeout: float) -> Ciphertext:
        mount = self.settings.transit_mount

        def call() -> Ciphertext:
            response = self._client.secrets.transit.rewrap_data(
                name=ciphertext.key, ciphertext=ciphertext.ciphertext, mount_point=mount
            )
            return Ciphertext(ciphertext.key, str(response["data"]["ciphertext"]))

        return await self._run(f"transit key {mount}/{ciphertext.key}", call, timeout)

    async def latest_key_version(self, key: str, timeout: float) -> int:
        mount = self.settings.transit_mount

        def call() -> int:
            response = self._client.secrets.transit.read_key(name=key, mount_point=mount)
            return int(response["data"]["latest_version"])

        return await self._run(f"transit key {mount}/{key}", call, timeout)


def key_version(ciphertext: Ciphertext) -> int:
    """N in ``vault:vN:...`` (0 if unreadable)."""
    head = ciphertext.ciphertext.split(":", 2)
    return int(head[1][1:]) if len(head) == 3 and head[1][1:].isdigit() else 0


class KeyVersions:
    """Whether a ciphertext predates its transit key's newest version, for one rewrap
    run: Vault is asked for each key's newest version once, on first use."""

    def __init__(self, vault: VaultClient, timeout: float) -> None:
        self._vault = vault
        self._timeout = timeout
        self._latest: dict[str, int] = {}

    async def stale(self, ciphertext: Ciphertext) -> bool:
        latest = self._latest.get(ciphertext.key)
        if latest is None:
            latest = await self._vault.latest_key_version(ciphertext.key, self._timeout)
            self._latest[ciphertext.key] = latest
        return key_version(ciphertext) < latest

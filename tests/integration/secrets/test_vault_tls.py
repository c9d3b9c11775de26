"""TLS to Vault, against an OpenBao serving HTTPS with its generated CA (-dev-tls)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
import requests

from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.errors import BackendUnavailableError
from configsvc.secrets.refs import SecretRef
from configsvc.secrets.settings import VaultAuth, VaultSettings
from configsvc.secrets.vault import VaultClient
from tests.helpers import free_port_pair


class TlsOpenBao(OpenBaoDevServer):
    """The dev server with ``-dev-tls``: HTTPS, a generated CA in ``data_dir/tls``."""

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "tls" / "vault-ca.pem"

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        super().prepare()
        (self.data_dir / "tls").mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [*super().command(), "-dev-tls", f"-dev-tls-cert-dir={self.data_dir / 'tls'}"]

    def is_ready(self) -> bool:
        if not self.ca_file.exists():
            return self._not_ready("no CA file yet")
        try:
            client = hvac.Client(url=self.address, token=self.token, verify=str(self.ca_file))
            client.secrets.kv.v2.read_configuration()
        except (requests.RequestException, hvac.exceptions.VaultError) as exc:
            return self._not_ready(type(exc).__name__)
        return True

    def after_ready(self) -> None:
        """Nothing to enable: KV v2 at secret/ is all this test needs."""


@pytest.fixture
def tls_bao(tmp_path: Path) -> Iterator[TlsOpenBao]:
    server = TlsOpenBao(tmp_path / "bao", port=free_port_pair())
    server.start(timeout=30)
    yield server
    server.stop()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
async def test_tls_verified_with_the_ca_file_and_refused_without(tls_bao: TlsOpenBao) -> None:
    root = hvac.Client(url=tls_bao.address, token=tls_bao.token, verify=str(tls_bao.ca_file))
    root.secrets.kv.v2.create_or_update_secret(path="tls/db", secret={"password": "over-tls"})
    root.adapter.close()
    ref = SecretRef("secret", "tls/db", "password")

    def client(**tls: object) -> VaultClient:
        settings = VaultSettings(
            address=tls_bao.address, auth=VaultAuth(token=tls_bao.token), **tls
        )  # type: ignore[arg-type]
        return VaultClient(settings)

    verified = client(ca_file=tls_bao.ca_file)
    unverified = client(tls_skip_verify=True)
    untrusted = client()
    try:
        assert (await verified.check_field(ref, 5)).data["password"] == "over-tls"
        assert (await unverified.check_field(ref, 5)).data["password"] == "over-tls"
        # The generated CA is not in the system store: the certificate is refused.
        with pytest.raises(BackendUnavailableError, match="SSLError"):
            await untrusted.check_field(ref, 5)
    finally:
        for each in (verified, unverified, untrusted):
            each.close()

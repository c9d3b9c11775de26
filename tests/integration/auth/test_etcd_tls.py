"""The server talks to an etcd that requires TLS and client certificates."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.store.etcd import EtcdTLS
from configsvc.v1 import config_pb2, tenant_pb2
from tests.helpers import ckey, close_stack, open_stack
from tests.integration.auth.certs import CA


class TlsEtcd(EtcdServer):
    """etcd serving its client API over TLS with client-certificate auth."""

    def __init__(self, data_dir: Path, ca: Path, cert: Path, key: Path) -> None:
        super().__init__(data_dir, free_port(), free_port())
        self.ca, self.cert, self.key = ca, cert, key

    @property
    def client_url(self) -> str:
        return f"https://{self.endpoint}"

    def command(self) -> list[str]:
        return [
            *super().command(),
            "--cert-file",
            str(self.cert),
            "--key-file",
            str(self.key),
            "--trusted-ca-file",
            str(self.ca),
            "--client-cert-auth",
        ]

    def is_ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        host, port = self.endpoint.rsplit(":", 1)
        connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=1)
        try:
            connection.request("GET", "/health")
            return b'"health":"true"' in connection.getresponse().read()
        except OSError:
            return False
        finally:
            connection.close()


async def test_server_uses_etcd_over_mutual_tls(tmp_path: Path) -> None:
    ca = CA("etcd CA")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    cert, key = ca.issue("localhost", server=True).write(tmp_path, "etcd")
    client_cert, client_key = ca.issue("configsvc", server=False).write(tmp_path, "client")
    etcd = TlsEtcd(tmp_path / "etcd", tmp_path / "ca.pem", cert, key)
    etcd.start(timeout=30)
    try:
        stack = await open_stack(
            etcd.endpoint,
            "/configsvc",
            etcd_tls=EtcdTLS(
                ca_file=tmp_path / "ca.pem", cert_file=client_cert, key_file=client_key
            ),
        )
        try:
            await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
            put = await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k"), value="1"))
            got = await stack.config.Get(
                config_pb2.GetRequest(
                    key=ckey("acme", "k"), consistency=config_pb2.READ_CONSISTENCY_STRONG
                )
            )
            assert got.entry.mod_revision == put.revision
        finally:
            await close_stack(stack)
    finally:
        etcd.stop()

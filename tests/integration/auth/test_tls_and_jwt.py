"""TLS with certificate reload, mTLS identities and JWT bearer tokens, on real servers."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from configsvc.auth.settings import AuthSettings, JwtSettings, ServerTLS
from configsvc.v1 import auth_pb2, auth_pb2_grpc, config_pb2, config_pb2_grpc
from tests.helpers import ADMIN_KEY, Stack, bearer, ckey, close_stack, open_stack
from tests.integration.auth.certs import CA
from tests.integration.auth.support import bind
from tests.integration.cli.test_auth_cli import run

ISSUER, AUDIENCE = "https://issuer.test", "configsvc"


def secure(address: str, ca: bytes, client: tuple[bytes, bytes] | None = None) -> grpc.aio.Channel:
    cert, key = client if client else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
    return grpc.aio.secure_channel(address, credentials)


async def whoami(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> str:
    stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
    reply = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=metadata, timeout=10)
    return str(reply.identity)


async def test_mtls_identity_and_certificate_reload(
    stack: Stack, tenant: str, tmp_path: Path
) -> None:
    ca = CA()
    cert_file, key_file = ca.issue("localhost", server=True).write(tmp_path, "server")
    (tmp_path / "clients.pem").write_bytes(ca.pem)
    tls = ServerTLS(cert_file, key_file, tmp_path / "clients.pem")
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix, tls=tls
    )
    client = ca.issue("svc-a", server=False)
    try:
        async with secure(other.address, ca.pem, (client.cert, client.key)) as channel:
            assert await whoami(channel) == "cert:svc-a"
            # A bearer token on the same connection wins over the certificate.
            assert await whoami(channel, bearer(ADMIN_KEY)) == "key:bootstrap-admin"
            stub = config_pb2_grpc.ConfigServiceStub(channel)  # type: ignore[no-untyped-call]
            request = config_pb2.ListRequest(tenant=tenant)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.List(request)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            await bind(stack, "cert:svc-a", auth_pb2.ROLE_VIEWER, tenant)
            await other.server.mirror.sync(5)
            await stub.List(request)
        # Without a client certificate the handshake itself fails.
        async with secure(other.address, ca.pem) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await whoami(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        # Rotate the server certificate to one from a new CA, without a restart.
        rotated = CA("rotated CA")
        issued = rotated.issue("localhost", server=True)
        key_file.write_bytes(issued.key)
        cert_file.write_bytes(issued.cert)
        future = time.time() + 5
        os.utime(cert_file, (future, future))  # a new mtime even on coarse clocks
        os.utime(key_file, (future, future))
        async with secure(other.address, rotated.pem, (client.cert, client.key)) as channel:
            assert await whoami(channel) == "cert:svc-a"
        assert other.server.tls is not None and other.server.tls.reloads == 1
    finally:
        await close_stack(other)


async def test_mtls_refusals_and_the_cli_hint(
    stack: Stack,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """grpcio cannot request a client certificate without requiring it, so a client
    without one (or with one from another CA) fails the handshake: UNAVAILABLE, before
    any RPC. The CLI says what to do about it."""
    ca = CA()
    cert_file, key_file = ca.issue("localhost", server=True).write(tmp_path, "server")
    (tmp_path / "clients.pem").write_bytes(ca.pem)
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        tls=ServerTLS(cert_file, key_file, tmp_path / "clients.pem"),
    )
    stranger = CA("another CA").issue("svc-a", server=False)
    good_cert, good_key = ca.issue("svc-cli", server=False).write(tmp_path, "client")
    monkeypatch.delenv("CONFIGSVC_API_KEY", raising=False)
    tls = ("--server", other.address, "--ca-file", str(tmp_path / "clients.pem"))
    try:
        async with secure(other.address, ca.pem, (stranger.cert, stranger.key)) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await whoami(channel)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        # An API key does not stand in for the certificate: the handshake comes first.
        async with secure(other.address, ca.pem) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await whoami(channel, bearer(ADMIN_KEY))
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE

        code, out, err_text = await run(capsys, "auth", "whoami", *tls, "--api-key", ADMIN_KEY)
        assert code == 1 and err_text.startswith("configsvc: UNAVAILABLE"), err_text
        assert "pass --cert-file and --key-file" in err_text
        code, out, err_text = await run(
            capsys,
            "auth",
            "whoami",
            *tls,
            "--cert-file",
            str(good_cert),
            "--key-file",
            str(good_key),
        )
        assert code == 0, err_text
        assert out.startswith("identity: cert:svc-cli (mtls)")
    finally:
        await close_stack(other)


def _jwks(tmp_path: Path) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public["kid"] = "k1"
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public]}))
    return key, path


def _token(key: rsa.RSAPrivateKey, **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": time.time() + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


async def test_jwt_bearer_tokens(stack: Stack, tenant: str, tmp_path: Path) -> None:
    key, jwks = _jwks(tmp_path)
    settings = AuthSettings(
        bootstrap_admin_key=ADMIN_KEY,
        jwt=JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=jwks),
    )
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix, auth=settings
    )
    try:
        async with grpc.aio.insecure_channel(other.address) as channel:
            good = _token(key)
            assert await whoami(channel, bearer(good)) == "jwt:alice"
            assert await whoami(channel, bearer(good)) == "jwt:alice"  # cached
            await bind(stack, "jwt:alice", auth_pb2.ROLE_EDITOR, tenant, "prod")
            await other.server.mirror.sync(5)
            stub = config_pb2_grpc.ConfigServiceStub(channel)  # type: ignore[no-untyped-call]
            put = await stub.Put(
                config_pb2.PutRequest(key=ckey(tenant, "by-jwt"), value="1"), metadata=bearer(good)
            )
            assert put.entry.updated_by == "jwt:alice"

            wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            for token in (
                _token(key, exp=time.time() - 3600),
                _token(key, aud="other"),
                _token(key, iss="https://evil.test"),
                _token(wrong_key),
                jwt.encode(
                    {"iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 60},
                    key,
                    algorithm="RS256",
                    headers={"kid": "k1"},
                ),
                jwt.encode({"sub": "x"}, key, algorithm="RS256", headers={"kid": "unknown"}),
                "not-a-jwt",
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await whoami(channel, bearer(token))
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, token
    finally:
        await close_stack(other)


class _Jwks(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        return


async def test_jwt_keys_from_a_jwks_url(stack: Stack, tmp_path: Path) -> None:
    key, jwks = _jwks(tmp_path)
    _Jwks.body = jwks.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    settings = AuthSettings(
        bootstrap_admin_key=ADMIN_KEY,
        jwt=JwtSettings(
            issuer=ISSUER,
            audience=AUDIENCE,
            jwks_url=f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json",
        ),
    )
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix, auth=settings
    )
    try:
        async with grpc.aio.insecure_channel(other.address) as channel:
            assert await whoami(channel, bearer(_token(key, sub="bob"))) == "jwt:bob"
            unknown = jwt.encode(
                {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": time.time() + 60},
                key,
                algorithm="RS256",
                headers={"kid": "nope"},
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await whoami(channel, bearer(unknown))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await close_stack(other)
        httpd.shutdown()
        thread.join(5)

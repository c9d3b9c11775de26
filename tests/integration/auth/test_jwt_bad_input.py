"""JWT under bad input (issue 17, item 9): a JWKS file caught mid-rotation and tokens with
claims past every range answer UNAUTHENTICATED with a plain reason, never UNKNOWN; the
last good key set keeps serving until a good file replaces it."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from configsvc.auth.settings import AuthSettings, JwtSettings
from configsvc.v1 import auth_pb2, auth_pb2_grpc
from tests.helpers import ADMIN_KEY, Stack, bearer, close_stack, open_stack

ISSUER, AUDIENCE = "https://issuer.test", "configsvc"


def _public(key: rsa.RSAPrivateKey, kid: str) -> dict[str, object]:
    public: dict[str, object] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public["kid"] = kid
    return public


def _write(path: Path, text: str) -> None:
    """Write ``text`` with a new modification time even on coarse clocks."""
    path.write_text(text)
    stamp = time.time() + int.from_bytes(os.urandom(2), "big") % 1000 + 1
    os.utime(path, (stamp, stamp))


def _token(key: rsa.RSAPrivateKey, kid: str = "k1", **claims: object) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": time.time() + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})


def _raw_token(key: rsa.RSAPrivateKey, payload: str, header: str | None = None) -> str:
    """A token signed over a payload written by hand (JSON PyJWT would not produce)."""

    def b64(data: str) -> str:
        return base64.urlsafe_b64encode(data.encode()).rstrip(b"=").decode()

    head = header or json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"})
    signing_input = f"{b64(head)}.{b64(payload)}"
    signature = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).sign(
        signing_input.encode(), key
    )
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


async def _whoami(channel: grpc.aio.Channel, token: str) -> str:
    stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
    reply = await stub.WhoAmI(auth_pb2.WhoAmIRequest(), metadata=bearer(token), timeout=10)
    return str(reply.identity)


async def _refused(channel: grpc.aio.Channel, token: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _whoami(channel, token)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, err.value.details()
    details = err.value.details() or ""
    assert "Error" not in details.split(":")[0], details  # a reason, not an exception name
    return details


@pytest.fixture
async def jwt_stack(stack: Stack, tmp_path: Path) -> AsyncIterator[tuple[Stack, Path]]:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    settings = AuthSettings(
        bootstrap_admin_key=ADMIN_KEY,
        jwt=JwtSettings(issuer=ISSUER, audience=AUDIENCE, jwks_file=path),
    )
    other = await open_stack(
        stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix, auth=settings
    )
    try:
        yield other, path
    finally:
        await close_stack(other)


async def test_bad_jwks_reload_keeps_the_last_good_keys(
    jwt_stack: tuple[Stack, Path], caplog: pytest.LogCaptureFixture
) -> None:
    other, path = jwt_stack
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with grpc.aio.insecure_channel(other.address) as channel:
        # No usable key yet (an empty set): a plain refusal naming the JWKS.
        assert "JWKS" in await _refused(channel, _token(key))
        good_document = json.dumps({"keys": [_public(key, "k1")]})
        _write(path, good_document)
        assert await _whoami(channel, _token(key)) == "jwt:alice"

        caplog.set_level(logging.WARNING)
        for broken in (
            good_document[: len(good_document) // 2],
            "",
            '{"keys": []}',
            '{"keys": [{"kty": "nonsense"}]}',
            "[1, 2]",
        ):
            caplog.clear()
            _write(path, broken)
            for _ in range(3):  # a fresh token each time: nothing from the token cache
                assert (
                    await _whoami(channel, _token(key, jti=os.urandom(4).hex())) == "jwt:alice"
                ), broken
            lines = [r for r in caplog.records if "JWKS" in r.getMessage()]
            assert len(lines) == 1, (broken, [r.getMessage() for r in lines])
            assert not lines[0].exc_info
        caplog.clear()
        path.unlink()  # a rotation that removes the file before writing the new one
        for _ in range(3):
            assert await _whoami(channel, _token(key, jti=os.urandom(4).hex())) == "jwt:alice"
        assert len([r for r in caplog.records if "JWKS" in r.getMessage()]) == 1
        # Rotation completes: the new key is served, the old one is gone.
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write(path, json.dumps({"keys": [_public(new_key, "k2")]}))
        assert await _whoami(channel, _token(new_key, "k2")) == "jwt:alice"
        assert "k1" in await _refused(channel, _token(key, jti="after-rotation"))


async def test_tokens_with_claims_out_of_range(jwt_stack: tuple[Stack, Path]) -> None:
    other, path = jwt_stack
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(path, json.dumps({"keys": [_public(key, "k1")]}))
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice"}

    def payload(**claims: object) -> str:
        return json.dumps({**base, **claims})

    async with grpc.aio.insecure_channel(other.address) as channel:
        assert await _whoami(channel, _token(key)) == "jwt:alice"
        for token in (
            _token(key, exp=10**400),
            _token(key, exp=253402300800),  # 10000-01-01
            _raw_token(key, payload().rstrip("}") + ', "exp": Infinity}'),
            _raw_token(key, payload().rstrip("}") + ', "exp": NaN}'),
            _raw_token(key, payload(exp=time.time() + 60).rstrip("}") + ', "iat": Infinity}'),
            _raw_token(key, payload(exp=time.time() + 60).rstrip("}") + ', "nbf": -Infinity}'),
            _raw_token(key, payload().rstrip("}") + ', "exp": 1' + "0" * 5000 + "}"),
            _raw_token(key, payload(exp="soon")),
            _raw_token(
                key,
                payload(exp=time.time() + 60),
                header=json.dumps({"alg": "RS256", "kid": ["k1"]}),
            ),
            _raw_token(key, payload(exp=time.time() + 60), header="[1]"),
            _raw_token(key, "[" * 2000 + "]" * 2000),
        ):
            await _refused(channel, token)

"""The key grammar: property tests that no accepted name can escape its prefix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import ConfigKey, key_violation, segment_violation
from configsvc.store.keyspace import Keyspace

KS = Keyspace("/root")
ANY_TEXT = st.text(min_size=0, max_size=80)


@given(tenant=ANY_TEXT, env=ANY_TEXT, service=ANY_TEXT, key=st.text(max_size=300))
def test_accepted_keys_stay_under_their_tenant_prefix(
    tenant: str, env: str, service: str, key: str
) -> None:
    try:
        parsed = ConfigKey.parse(tenant, env, service, key)
    except InvalidArgumentError as exc:
        assert exc.violations and all(v.field.startswith("key.") for v in exc.violations)
        return
    raw = KS.cfg_key(parsed)
    assert raw.startswith(KS.cfg_prefix(tenant))
    assert KS.parse_cfg_key(raw) == parsed
    for part in (tenant, env, service, key):
        assert "/" not in part and ".." not in part and part.isascii() and part.isprintable()


@given(st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True))
def test_valid_segments_accepted(segment: str) -> None:
    assert segment_violation("f", segment) is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "..",
        "a/b",
        "A",
        "a_b",
        "-a",
        "a-",
        "a" * 64,
        "\uff41",
        "a\u200bb",
        "a%2Fb",
        "a b",
        "\x00",
    ],
)
def test_invalid_segments_rejected(bad: str) -> None:
    violation = segment_violation("tenant", bad)
    assert violation is not None and violation.field == "tenant"


@pytest.mark.parametrize("bad", ["", ".", "..a", "a..b", "a/b", "a\\b", "-a", "k" * 257, "é"])
def test_invalid_keys_rejected(bad: str) -> None:
    assert key_violation("key", bad) is not None


def test_parse_reports_every_bad_part_at_once() -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        ConfigKey.parse("", "Bad", "ok", "a/b")
    assert [v.field for v in exc.value.violations] == ["key.tenant", "key.environment", "key.key"]


def test_keyspace_layout() -> None:
    key = ConfigKey("acme", "prod", "api", "db.pool")
    assert KS.cfg_key(key) == b"/root/t/acme/cfg/prod/api/db.pool"
    assert KS.hist_key(key, 7) == b"/root/t/acme/hist/prod/api/db.pool/00000000000000000007"
    assert KS.version_from_hist_key(KS.hist_key(key, 7)) == 7
    assert KS.tenant_key("acme") == b"/root/sys/tenants/acme"
    assert KS.tenant_from_key(b"/root/sys/tenants/acme") == "acme"
    assert KS.tenant_from_key(b"/root/t/acme/cfg/x") is None
    assert KS.parse_cfg_key(b"/root/t/acme/hist/prod/api/k/1") is None
    assert KS.parse_cfg_key(b"/other/t/acme/cfg/prod/api/k") is None
    assert Keyspace("configsvc/").root == "/configsvc"
    with pytest.raises(ValueError, match="root prefix"):
        Keyspace("/")

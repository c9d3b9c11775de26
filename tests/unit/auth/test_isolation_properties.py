"""Property tests: no crafted key, selector or request escapes its tenant.

Hypothesis generates names from the hostile alphabet (``/``, ``.``, ``%``,
NUL and other controls, look-alike unicode, very long runs) mixed with valid
characters; whatever passes the parsers must map to etcd keys under its own
tenant's prefix, and a grant on one tenant must never cover another.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from configsvc.auth.rules import AUTHENTICATED, METHOD_RULES, PUBLIC
from configsvc.auth.scope import plan
from configsvc.errors import InvalidArgumentError
from configsvc.model.grants import CONFIG_READ, PERMISSIONS, Grant, Scope, matches, overlaps
from configsvc.model.keys import ConfigKey
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import config_pb2, watch_pb2
from configsvc.watch import selectors

KS = Keyspace("/root")
HOSTILE = [
    "..",
    "/",
    "%2F",
    "%2e%2e",
    "\x00",
    "\\",
    "\uff54",
    "\u0430",
    "\u0455",
    "\u200b",
    "\n",
    " ",
    "*",
    "a" * 64,
    "k" * 257,
]
name_text = st.one_of(
    st.sampled_from(["acme", "prod", "api", "all", "db.pool", "a-b", "x"]),
    st.text(alphabet=st.sampled_from("abz09-._/%\\*\x00\u0430\uff54"), max_size=70),
    st.lists(st.sampled_from(["acme", *HOSTILE]), min_size=1, max_size=4).map("".join),
)


def _parse(tenant: str, env: str, service: str, key: str) -> ConfigKey | None:
    try:
        return ConfigKey.parse(tenant, env, service, key)
    except InvalidArgumentError:
        return None


@settings(max_examples=400, deadline=None)
@given(name_text, name_text, name_text, name_text)
def test_parsed_keys_stay_under_their_tenant(tenant: str, env: str, service: str, key: str) -> None:
    parsed = _parse(tenant, env, service, key)
    if parsed is None:
        return
    raw = KS.cfg_key(parsed)
    assert raw.startswith(KS.cfg_prefix(tenant))
    assert KS.parse_cfg_key(raw) == parsed  # the key round-trips: nothing was re-split
    for part in (tenant, env, service, key):
        assert "/" not in part and ".." not in part and part.isascii() and part.isprintable()


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_segments_are_rejected(bad: str) -> None:
    assert _parse(f"acme{bad}", "prod", "api", "k") is None
    if bad != "a" * 64:  # long for a segment, fine for a key
        assert _parse("acme", "prod", "api", f"k{bad}k") is None


@settings(max_examples=300, deadline=None)
@given(
    name_text,
    name_text,
    name_text,
    st.lists(name_text, max_size=3),
    st.lists(name_text, max_size=3),
    name_text,
)
def test_selectors_never_match_another_tenant(
    tenant: str, env: str, service: str, keys: list[str], prefixes: list[str], other: str
) -> None:
    message = watch_pb2.WatchSelector(
        tenant=tenant, environment=env, service=service, keys=keys, key_prefixes=prefixes
    )
    try:
        (selector,) = selectors.parse([message])
    except InvalidArgumentError:
        return
    assert KS.scope_prefix(selector.tenant, selector.environment, selector.service).startswith(
        KS.cfg_prefix(tenant)
    )
    foreign = _parse(other, env or "prod", service or "api", (keys or prefixes or ["k"])[0])
    if foreign is not None and foreign.tenant != tenant:
        assert not selector.matches(foreign)


_PUT = plan(config_pb2.PutRequest.DESCRIPTOR)
_LIST = plan(config_pb2.ListRequest.DESCRIPTOR)
_WATCH = plan(watch_pb2.WatchRequest.DESCRIPTOR)


@settings(max_examples=300, deadline=None)
@given(name_text, name_text, name_text, name_text)
def test_request_scopes_are_grammar_checked_and_grants_stay_in_their_tenant(
    tenant: str, env: str, service: str, key: str
) -> None:
    requests = [
        (
            _PUT,
            config_pb2.PutRequest(
                key=config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)
            ),
        ),
        (
            _LIST,
            config_pb2.ListRequest(tenant=tenant, environment=env, service=service, key_prefix=key),
        ),
        (
            _WATCH,
            watch_pb2.WatchRequest(
                selectors=[
                    watch_pb2.WatchSelector(
                        tenant=tenant, environment=env, keys=[key], key_prefixes=[key]
                    )
                ]
            ),
        ),
    ]
    grant = Grant(frozenset({CONFIG_READ}), "acme", "*", "*", "")
    prefix_grant = Grant(frozenset({CONFIG_READ}), "ac*", "*", "*", "")
    for scope_plan, request in requests:
        try:
            scopes = scope_plan.scopes(request)
        except InvalidArgumentError:
            continue
        for scope in scopes:
            for value in (
                scope.tenant,
                scope.environment,
                scope.service,
                scope.key,
                scope.key_prefix,
            ):
                assert value is None or (
                    "/" not in value
                    and value.isascii()
                    and value.isprintable()
                    and ".." not in value
                )
            if grant.covers(CONFIG_READ, scope) or grant.overlaps(CONFIG_READ, scope):
                assert scope.tenant == "acme"
            if prefix_grant.covers(CONFIG_READ, scope):
                assert scope.tenant is not None and scope.tenant.startswith("ac")


def test_every_rule_names_a_known_permission() -> None:
    for method, rule in METHOD_RULES.items():
        assert rule.permission in (*PERMISSIONS, PUBLIC, AUTHENTICATED), method


def test_patterns() -> None:
    assert matches("*", None) and matches("*", "x")
    assert matches("team-*", "team-a") and not matches("team-*", "teamb")
    assert not matches("acme", None) and not matches("acme", "acme2")
    assert overlaps("acme", None) and not overlaps("acme", "beta")
    g = Grant(frozenset({CONFIG_READ}), "acme", "prod", "*", "db.")
    assert g.covers(CONFIG_READ, Scope("acme", "prod", "api", "db.pool"))
    assert not g.covers(CONFIG_READ, Scope("acme", "prod", "api", None, None))
    assert g.covers(CONFIG_READ, Scope("acme", "prod", "api", None, "db.x"))
    assert g.overlaps(CONFIG_READ, Scope("acme", None, None, None, "d"))
    assert not g.overlaps(CONFIG_READ, Scope("acme", None, None, None, "x"))
    assert not g.overlaps(CONFIG_READ, Scope("acme", None, None, "x.y"))
    assert not g.covers("config.write", Scope("acme", "prod", "api", "db.pool"))

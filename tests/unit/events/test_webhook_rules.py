"""Pure rules of webhooks: the host allow-list, URL form, signatures, filters."""

from __future__ import annotations

import pytest

from configsvc.events.webhooks.allowlist import host_allowed, target_problem, url_problem
from configsvc.events.webhooks.dispatch import matches
from configsvc.events.webhooks.signing import signature, verify
from configsvc.events.webhooks.store import WebhookKeys, delivery_id
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import config_pb2, events_pb2, webhooks_pb2

ALLOWED = ("hooks.example.com", "*.corp.example", "127.0.0.1", "::1")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("hooks.example.com", True),
        ("HOOKS.example.com.", True),
        ("evil.example.com", False),
        ("a.corp.example", True),
        ("x.y.corp.example", True),
        ("corp.example", False),
        ("evilcorp.example", False),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("[::1]", True),
        ("hooks.example.com.evil.net", False),
    ],
)
def test_host_allow_list(host: str, allowed: bool) -> None:
    assert host_allowed(host, ALLOWED) is allowed


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "required"),
        ("ftp://hooks.example.com/x", "http"),
        ("https://u:p@hooks.example.com", "credentials"),
        ("https:///path", "no host"),
        ("https://hooks.example.com/#frag", "fragment"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://h/" + "a" * 3000, "limit"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    found = url_problem(url)
    assert found is not None and problem in found


def test_target_needs_an_allowed_host() -> None:
    assert target_problem("https://hooks.example.com/in?x=1", ALLOWED) is None
    assert "allow-list" in (target_problem("http://169.254.169.254/latest", ALLOWED) or "")
    assert "http" in (target_problem("gopher://x", ALLOWED) or "")


def test_signature_round_trip_and_replay_window() -> None:
    body = b'{"revision": 7}'
    header = signature("s" * 20, 1_000_000, body)
    assert header.startswith("t=1000000,v1=")
    assert verify("s" * 20, header, body, now=1_000_100)
    assert not verify("s" * 20, header, body + b" ", now=1_000_100)  # body changed
    assert not verify("t" * 20, header, body, now=1_000_100)  # other secret
    assert not verify("s" * 20, header, body, now=1_000_000 + 301)  # too old: replay
    assert not verify("s" * 20, "v1=abc", body, now=1_000_000)
    assert not verify("s" * 20, "t=x,v1=abc", body, now=1_000_000)


def test_filters_and_ids() -> None:
    event = events_pb2.ConfigurationUpdatedEvent(
        event_id="42-1",
        revision=42,
        tenant="acme",
        key=config_pb2.ConfigKey(tenant="acme", environment="prod", service="api", key="db.pool"),
    )
    hook = webhooks_pb2.Webhook(tenant="acme")
    assert matches(hook, event)
    assert matches(
        webhooks_pb2.Webhook(tenant="acme", environment="prod", service="api", key_prefix="db."),
        event,
    )
    assert not matches(webhooks_pb2.Webhook(tenant="acme", environment="dev"), event)
    assert not matches(webhooks_pb2.Webhook(tenant="acme", service="web"), event)
    assert not matches(webhooks_pb2.Webhook(tenant="acme", key_prefix="cache."), event)
    assert not matches(webhooks_pb2.Webhook(tenant="other"), event)
    assert not matches(hook, events_pb2.ConfigurationUpdatedEvent(tenant="acme", kind="schema"))
    assert delivery_id(event) == f"{42:020d}-1"
    keys = WebhookKeys(Keyspace("/r"))
    queue = keys.queue("acme", "ab" * 8, delivery_id(event))
    assert keys.parse_queue(queue) == ("acme", "ab" * 8, delivery_id(event))
    assert keys.parse_queue(keys.queue_prefix + b"junk") is None

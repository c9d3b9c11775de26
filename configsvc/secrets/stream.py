"""Watch streams that resolve secrets.

The hub encodes each change once for every stream; a stream that asked for
``resolve_secrets`` decodes the messages that carry entries holding
references, resolves them for its caller (permission checked at open,
every delivered secret audited) and encodes them again, so the cost stays on
those streams. It also registers the secrets its scope references with the
rotation poller and, on a rotation, queues a ``secrets_rotated`` message
behind everything already queued, with the affected entries as of the
stream's revision (they are resolved when sent, like any other message).
"""

from __future__ import annotations

from configsvc.errors import ConfigsvcError
from configsvc.model.keys import ConfigKey
from configsvc.resolve.jsonvalue import parse_value
from configsvc.secrets.gateway import SecretGateway, Stored
from configsvc.secrets.refs import SecretRef, might_hold_secrets, walk
from configsvc.secrets.rotation import RotationPoller, Secret
from configsvc.store.mirror import Item
from configsvc.store.ports import MirrorPort
from configsvc.v1 import config_pb2, secrets_pb2, watch_pb2
from configsvc.watch.hub import Subscription
from configsvc.watch.selectors import Selector

METHOD = "Watch"


class ResolvingStream:
    """Per-stream resolution and rotation events; attach after the hub opened the stream."""

    def __init__(
        self,
        gateway: SecretGateway,
        poller: RotationPoller | None,
        mirror: MirrorPort,
        actor: str,
        timeout: float,
    ) -> None:
        self._gateway = gateway
        self._poller = poller
        self._mirror = mirror
        self._actor = actor
        self._timeout = timeout
        self._sub: Subscription | None = None
        self._tracked: set[Secret] = set()

    async def authorize(self, tenants: tuple[str, ...]) -> None:
        """PERMISSION_DENIED (audited) unless the caller may read secrets of every tenant."""
        for tenant in tenants:
            if not self._gateway.check_permission(self._actor, tenant):
                raise await self._gateway.deny(
                    self._actor, tenant, ["*"], "watch", METHOD, self._timeout
                )

    def attach(self, sub: Subscription, *, resumed: bool = False) -> None:
        """Start following the scope's secrets. A stream opened without a snapshot
        (a resume) cannot know which secret versions its client holds, so every entry
        that follows a secret is sent again at once as ``secrets_rotated``."""
        self._sub = sub
        secrets: set[Secret] = set()
        for item in self._items(sub.selectors):
            secrets.update(_followed(item.entry.value))
        self._track(secrets)
        if self._poller is not None:
            self._poller.add_listener(self.on_rotated)
        if resumed and secrets:
            self._announce(frozenset(secrets))

    def detach(self) -> None:
        if self._poller is not None:
            self._poller.remove_listener(self.on_rotated)
            self._poller.untrack(self._tracked)
        self._tracked.clear()
        self._sub = None

    def _track(self, secrets: set[Secret]) -> None:
        new = secrets - self._tracked
        if new and self._poller is not None:
            self._tracked |= new
            self._poller.track(new)

    def _items(self, selectors: tuple[Selector, ...]) -> list[Item]:
        matched: dict[ConfigKey, Item] = {}
        for selector in selectors:
            prefix = self._mirror.scope_prefix(
                selector.tenant, selector.environment, selector.service
            )
            for item in self._mirror.items(prefix):
                if selector.matches(item.key):
                    matched[item.key] = item
        return [matched[k] for k in sorted(matched)]

    def on_rotated(self, rotated: frozenset[Secret]) -> None:
        if rotated & self._tracked:
            self._announce(rotated)

    def _announce(self, rotated: frozenset[Secret]) -> None:
        """Queue the entries following ``rotated`` secrets, behind what is queued."""
        sub = self._sub
        if sub is None or sub.closing:
            return
        entries = []
        refs: set[SecretRef] = set()
        for item in self._items(sub.selectors):
            if not might_hold_secrets(item.entry.value):
                continue
            hit = {r for r in _refs(item.entry.value) if r.secret in rotated and r.version is None}
            if hit:
                refs |= hit
                entries.append(item.entry)
        if not entries:
            return
        message = watch_pb2.WatchResponse(
            secrets_rotated=secrets_pb2.SecretsRotated(
                revision=sub.revision,
                refs=[r.message() for r in sorted(refs, key=str)],
                entries=entries,
            )
        )
        sub.push(message.SerializeToString())

    async def transform(self, data: bytes) -> bytes:
        """``data`` with the secrets in its entries resolved (unchanged when it has none)."""
        message = watch_pb2.WatchResponse.FromString(data)
        kind = message.WhichOneof("kind")
        entries: list[config_pb2.ConfigEntry]
        if kind == "snapshot":
            entries = list(message.snapshot.entries)
        elif kind == "changes":
            entries = [c.entry for c in message.changes.changes if c.HasField("entry")]
        elif kind == "secrets_rotated":
            entries = list(message.secrets_rotated.entries)
        else:
            return data
        holding = [e for e in entries if might_hold_secrets(e.value)]
        if not holding:
            return data
        secrets: set[Secret] = set()
        for entry in holding:
            secrets.update(_followed(entry.value))
        self._track(secrets)
        texts = await self._gateway.resolve_texts(
            [Stored(e.key.tenant, _key_name(e.key), e.value) for e in holding],
            actor=self._actor,
            method=METHOD,
            timeout=self._timeout,
        )
        for entry, text in zip(holding, texts, strict=True):
            entry.value = text
        return bytes(message.SerializeToString())


def _refs(text: str) -> list[SecretRef]:
    try:
        return [f for _, f in walk(parse_value(text)) if isinstance(f, SecretRef)]
    except ConfigsvcError:
        return []  # stored before the rule; resolving it reports the problem


def _followed(text: str) -> set[Secret]:
    """The secrets whose newest version ``text`` follows (pinned versions never rotate)."""
    if not might_hold_secrets(text):
        return set()
    return {r.secret for r in _refs(text) if r.version is None}


def _key_name(key: config_pb2.ConfigKey) -> str:
    return f"{key.tenant}/{key.environment}/{key.service}/{key.key}"

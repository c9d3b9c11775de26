"""The mirror computes a transport's bytes once per change without knowing their format.

``Mirror.use_encoder`` (installed by the ConfigService with ``api.wire.RESPONSE_WIRE``):
every item the mirror applies carries the encoder's bytes for it, the revision's bytes
follow every advance, items loaded before the encoder was installed are re-encoded, and
a second, different encoder is refused. A pure unit: a mirror fed watch events by hand.
"""

from __future__ import annotations

import pytest
from aetcd import rpc

from configsvc.api.wire import RESPONSE_WIRE
from configsvc.internal.v1 import storage_pb2
from configsvc.model.keys import ConfigKey
from configsvc.store.keyspace import Keyspace
from configsvc.store.mirror import Mirror
from configsvc.store.ports import MirrorPort
from configsvc.v1 import config_pb2
from tests.unit.standins import UnreachableEtcd

KS = Keyspace("/unit")
KEY = ConfigKey("t", "prod", "api", "k")


def put_event(value: str, revision: int) -> rpc.Event:
    stored = storage_pb2.StoredValue(value=value, version=revision)
    return rpc.Event(
        type=rpc.Event.PUT,
        kv=rpc.KeyValue(
            key=KS.cfg_key(KEY),
            value=stored.SerializeToString(),
            create_revision=1,
            mod_revision=revision,
        ),
    )


def get_answer(mirror: Mirror) -> config_pb2.GetResponse:
    """What the ConfigService answers a Get of KEY with, from the mirror's bytes."""
    reader: MirrorPort = mirror  # the concrete mirror satisfies the domain's protocol
    item = reader.lookup(KEY.tenant, KEY.environment, KEY.service, KEY.key)
    assert item is not None
    return config_pb2.GetResponse.FromString(item.encoded + mirror.encoded_revision)


def test_items_and_revisions_carry_the_encoders_bytes() -> None:
    mirror = Mirror(UnreachableEtcd(), KS)
    mirror.use_encoder(RESPONSE_WIRE)
    mirror._apply([put_event("1", 5)])
    answer = get_answer(mirror)
    assert (answer.entry.value, answer.entry.mod_revision, answer.revision) == ("1", 5, 5)
    mirror._apply([put_event("2", 9)])
    answer = get_answer(mirror)
    assert (answer.entry.value, answer.revision) == ("2", 9)


def test_items_loaded_before_the_encoder_are_re_encoded() -> None:
    mirror = Mirror(UnreachableEtcd(), KS)
    mirror._apply([put_event("early", 3)])
    item = mirror.lookup(KEY.tenant, KEY.environment, KEY.service, KEY.key)
    assert item is not None and item.encoded == b"" and mirror.encoded_revision == b""
    mirror.use_encoder(RESPONSE_WIRE)
    answer = get_answer(mirror)
    assert (answer.entry.value, answer.revision) == ("early", 3)
    mirror.use_encoder(RESPONSE_WIRE)  # the same encoder again: nothing changes


def test_a_second_different_encoder_is_refused() -> None:
    class Other:
        def item(self, data: bytes) -> bytes:
            return b"x"

        def revision(self, revision: int) -> bytes:
            return b"y"

    mirror = Mirror(UnreachableEtcd(), KS)
    mirror.use_encoder(RESPONSE_WIRE)
    with pytest.raises(ValueError, match="already encodes"):
        mirror.use_encoder(Other())

"""The pre-encoded parts of ``GetResponse`` / ``PutResponse``: the API's wire format.

A Get of an existing key is the hot path: its answer is ``GetResponse`` field 1
(the entry, framed) followed by field 2 (the revision), and concatenated
protobuf fields are a valid message. The mirror computes these bytes once per
change through this ``WireEncoder`` (``Mirror.use_encoder``) without knowing
what they are, so the store stays free of the API's message layout.
"""

from __future__ import annotations

from configsvc.model.protowire import field, varint

_ENTRY = b"\x0a"  # GetResponse.entry and PutResponse.entry (field 1, length-delimited)
_REVISION = b"\x10"  # GetResponse.revision and PutResponse.revision (field 2, varint)


class ResponseWire:
    """Frames entries and revisions as field 1 and field 2 of Get/Put responses."""

    __slots__ = ()

    def item(self, data: bytes) -> bytes:
        """Field 1 (the entry) of a Get or Put answer, for a serialized ConfigEntry."""
        return field(_ENTRY, data)

    def revision(self, revision: int) -> bytes:
        """Field 2 (the revision) of a Get or Put answer."""
        return _REVISION + varint(revision)

    def __repr__(self) -> str:
        return "configsvc.api.wire.RESPONSE_WIRE"


#: The one encoder the ConfigService installs in its mirror.
RESPONSE_WIRE = ResponseWire()

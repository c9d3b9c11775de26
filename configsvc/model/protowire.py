"""Protobuf wire framing by hand, for messages assembled from pre-encoded parts.

The read and watch paths send the same encoded entry to many callers; the
wire format lets a length-delimited field be written as ``tag, length,
bytes``, so responses are concatenations of bytes encoded once. Tests decode
every frame built here with the generated classes.
"""

from __future__ import annotations


def varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, varint length, payload."""
    return tag + varint(len(payload)) + payload

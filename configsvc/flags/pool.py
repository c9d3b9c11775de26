"""The private descriptor pool of the vendored flagd protos.

The flagd stubs register in this pool, not in protobuf's default one: the
OpenFeature flagd provider ships its own stubs of the same ``flagd.*`` symbols
in the default pool, and protobuf refuses a second definition of a symbol, so a
process that embeds both (our tests, or a service hosting the server next to a
provider) would fail at import. Server reflection reads one pool, so it is
given ``reflection_pool``: the served services of both pools copied into one.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor_pool, struct_pb2
from google.protobuf.descriptor import FileDescriptor

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)


def reflection_pool(service_names: Iterable[str]) -> descriptor_pool.DescriptorPool:
    """A pool holding the files of ``service_names`` and their imports, for reflection.

    Each name is looked up here first, so a process that also loaded the flagd
    provider's own (possibly other-version) ``flagd.*`` stubs into the default pool
    still describes what this server serves. Files shared by both pools
    (``google/protobuf/struct.proto``) are added once.
    """
    merged = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        added.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        merged.AddSerializedFile(file.serialized_pb)

    for name in service_names:
        try:
            service = POOL.FindServiceByName(name)
        except KeyError:
            service = descriptor_pool.Default().FindServiceByName(name)
        add(service.file)
    return merged

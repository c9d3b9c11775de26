"""The private descriptor pool of the vendored flagd protos.

The flagd stubs register in this pool, not in protobuf's default one: the
OpenFeature flagd provider ships its own stubs of the same ``flagd.*`` symbols
in the default pool, and protobuf refuses a second definition of a symbol, so a
process that embeds both (our tests, or a service hosting the server next to a
provider) would fail at import. Consequence: these services are not listed by
server reflection (which reads the default pool); flagd clients use their own
stubs anyway.
"""

from __future__ import annotations

from google.protobuf import descriptor_pool, struct_pb2

POOL = descriptor_pool.DescriptorPool()
POOL.AddSerializedFile(struct_pb2.DESCRIPTOR.serialized_pb)

"""What every transport and the domain share about a call, and nothing above the store.

The status table (typed errors -> gRPC status and details), request helpers (actor,
key and segment checks, timestamps and durations), the method registry (one wrapper
per handler), page tokens and the caller's principal (a contextvar the admission
step sets). A leaf package: it imports only ``configsvc.errors``, ``configsvc.model``,
``configsvc.ratelog`` and generated stubs, so any domain package may use it.
"""

"""Feature flags, OpenFeature-native.

Flag sets live per tenant and environment in the flagd flag-definition JSON
format (``store``), are validated against the official flagd schemas
(``schema``), evaluated to flagd's semantics (``evaluator``; ``fractional``
replaces the one operator where ``openfeature-flagd-core`` deviates) and served
over flagd's own protocols (``api``: ``flagd.evaluation.v1``, ``flagd.sync.v1``;
``ofrep``: OFREP over HTTP), so an unchanged OpenFeature flagd provider works
against the server.
"""

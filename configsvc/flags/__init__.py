"""Feature flags, OpenFeature-native.

Flag sets live per tenant and environment in the flagd flag-definition JSON
format (``store``), are validated against the official flagd schemas
(``schema``), evaluated to flagd's semantics (``evaluator``; ``fractional``
replaces the one operator where ``openfeature-flagd-core`` deviates) and, through
``core`` (selection, context, counting: no transport), served over flagd's own
protocols (``configsvc.api.flagd_service``: ``flagd.evaluation.v1``/``v2``,
``flagd.sync.v1``; ``configsvc.http.ofrep``: OFREP over HTTP), so an unchanged
OpenFeature flagd provider works against the server.
"""

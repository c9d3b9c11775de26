"""Whether an event may carry a changed value.

Events go to places with a wider audience than the config itself (every
Pulsar consumer, webhook receivers), so a value that is or contains a secret
or a field marked sensitive must never be sent; the event then carries only
digests and ``value_withheld``. The decision lives in this one function so
the secrets feature extends it in one place.
"""

from __future__ import annotations

from configsvc.model.keys import ConfigKey


def withhold_value(key: ConfigKey, value: str) -> bool:
    """True when ``value`` of ``key`` must not leave the server in an event.

    Nothing is classified as secret or sensitive yet: SecretRef values and
    sensitive schema fields arrive with the secrets issue, which extends this
    check (a value that is or contains a SecretRef object, a field a schema
    marks sensitive).
    """
    del key, value
    return False

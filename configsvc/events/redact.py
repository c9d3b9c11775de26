"""Whether an event may carry a changed value.

Events go to places with a wider audience than the config itself (every
Pulsar consumer, webhook receivers), so a value that is or contains a secret
reference or a sensitive field's ciphertext is never sent; the event then
carries only digests and ``value_withheld``. A reference is not the secret,
but which secrets a service uses, and ciphertexts, are still nobody else's
business, and "never a secret-bearing value in an event" is a rule a
reviewer can check without reading Vault policies.
"""

from __future__ import annotations

import json

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import ConfigKey
from configsvc.secrets.refs import might_hold_secrets, walk


def withhold_value(key: ConfigKey, value: str) -> bool:
    """True when ``value`` of ``key`` must not leave the server in an event.

    That is any value holding a ``$secret`` reference or an ``$encrypted``
    ciphertext anywhere inside it. A value that cannot be parsed is withheld
    too: when in doubt, leave it out.
    """
    del key
    if not might_hold_secrets(value):
        return False
    try:
        return next(walk(json.loads(value)), None) is not None
    except (ValueError, InvalidArgumentError):
        return True

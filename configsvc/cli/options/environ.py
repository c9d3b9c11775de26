"""Option defaults from the environment (``CONFIGSVC_<NAME>``) and list-valued options.

Every server option reads its default here, so ``serve`` and ``dev`` can be
configured by environment alone (containers, systemd units) with the same
names the ``--help`` texts give.
"""

from __future__ import annotations

import os
from typing import TypeVar

ENV_PREFIX = "CONFIGSVC_"

Number = TypeVar("Number", int, float)


def env(name: str, default: str) -> str:
    """A setting from ``CONFIGSVC_<NAME>``, or the default."""
    return os.environ.get(ENV_PREFIX + name, default)


def comma_list(text: str) -> tuple[str, ...]:
    """A comma-separated option (hosts, endpoints, identities); blanks around items dropped."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def env_number(name: str, default: Number) -> Number:
    """``CONFIGSVC_<NAME>`` read as the type of ``default`` (int or float).

    A value that is not a number fails when the parser is built, before the
    server starts, as it always has.
    """
    return type(default)(env(name, str(default)))

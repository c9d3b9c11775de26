"""Option defaults from the environment: ``CONFIGSVC_<NAME>``, else the built-in default."""

from __future__ import annotations

from typing import TypeVar

from configsvc.server.config import env

Number = TypeVar("Number", int, float)


def env_number(name: str, default: Number) -> Number:
    """``CONFIGSVC_<NAME>`` read as the type of ``default`` (int or float).

    A value that is not a number fails when the parser is built, before the
    server starts, as it always has.
    """
    return type(default)(env(name, str(default)))

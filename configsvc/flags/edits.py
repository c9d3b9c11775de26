"""Edits of one flag inside a flagd definition (in place; the store re-validates the result)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from configsvc.errors import InvalidArgumentError, NotFoundError

Edit = Callable[[dict[str, Any]], None]


def _flags(definition: dict[str, Any]) -> dict[str, Any]:
    flags = definition.setdefault("flags", {})
    if isinstance(flags, list):  # flagd's array form: edit it as a map, keep the map
        flags = {entry["key"]: {k: v for k, v in entry.items() if k != "key"} for entry in flags}
        definition["flags"] = flags
    result: dict[str, Any] = flags
    return result


def _flag(definition: dict[str, Any], key: str) -> dict[str, Any]:
    flags = _flags(definition)
    if key not in flags:
        raise NotFoundError("flag", key, f"flag {key!r} not found in the flag set")
    flag: dict[str, Any] = flags[key]
    return flag


def put_flag(key: str, flag: dict[str, Any]) -> Edit:
    def edit(definition: dict[str, Any]) -> None:
        _flags(definition)[key] = flag

    return edit


def delete_flag(key: str) -> Edit:
    def edit(definition: dict[str, Any]) -> None:
        _flag(definition, key)
        del _flags(definition)[key]

    return edit


def set_state(key: str, enabled: bool) -> Edit:
    def edit(definition: dict[str, Any]) -> None:
        _flag(definition, key)["state"] = "ENABLED" if enabled else "DISABLED"

    return edit


def _find_fractional(rule: Any) -> list[Any] | None:
    """The argument list of the first ``fractional`` in ``rule`` (depth first)."""
    if isinstance(rule, dict):
        for op, args in rule.items():
            if op == "fractional" and isinstance(args, list):
                return args
            found = _find_fractional(args)
            if found is not None:
                return found
    elif isinstance(rule, list):
        for item in rule:
            found = _find_fractional(item)
            if found is not None:
                return found
    return None


def set_rollout(key: str, weights: Sequence[tuple[str, int]]) -> Edit:
    """Give the flag's first ``fractional`` exactly ``weights`` (keeping its bucketing value)."""
    if not weights:
        raise InvalidArgumentError.single("weights", "must name at least one variant")
    seen: set[str] = set()
    for index, (variant, weight) in enumerate(weights):
        if weight < 0:
            raise InvalidArgumentError.single(
                f"weights[{index}].weight", f"is {weight}; weights are 0 or more"
            )
        if variant in seen:
            raise InvalidArgumentError.single(
                f"weights[{index}].variant", f"{variant!r} appears twice"
            )
        seen.add(variant)
    if sum(w for _, w in weights) <= 0:
        raise InvalidArgumentError.single("weights", "must add up to more than 0")

    def edit(definition: dict[str, Any]) -> None:
        flag = _flag(definition, key)
        for index, (variant, _) in enumerate(weights):
            if variant not in flag.get("variants", {}):
                raise InvalidArgumentError.single(
                    f"weights[{index}].variant",
                    f"{variant!r} is not a variant of flag {key!r} (it has "
                    f"{', '.join(sorted(flag.get('variants', {})))})",
                )
        buckets = [[variant, weight] for variant, weight in weights]
        args = _find_fractional(flag.get("targeting"))
        if args is None:
            flag["targeting"] = {"fractional": buckets}
            return
        keep = [] if not args or isinstance(args[0], list) else [args[0]]
        args[:] = [*keep, *buckets]

    return edit

"""Labels: small name -> value maps stored with a config value, for List filters."""

from __future__ import annotations

import re
from collections.abc import Mapping

from configsvc.errors import FieldViolation, InvalidArgumentError

LABELS_MAX = 64
LABEL_VALUE_MAX = 256
_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?")


def validate_labels(labels: Mapping[str, str], field: str = "labels") -> dict[str, str]:
    """The labels as a plain dict; INVALID_ARGUMENT naming each bad label otherwise."""
    if not labels:
        return {}
    violations = []
    if len(labels) > LABELS_MAX:
        violations.append(
            FieldViolation(field, f"has {len(labels)} labels; the limit is {LABELS_MAX}")
        )
    for name in sorted(labels):
        value = labels[name]
        if not _NAME_RE.fullmatch(name):
            violations.append(
                FieldViolation(
                    f"{field}[{name[:40]!a}]",
                    "label names are 1 to 63 characters of a-z, 0-9, "
                    "'.', '_', '-', starting and ending with a letter or digit",
                )
            )
        elif len(value) > LABEL_VALUE_MAX or not value.isprintable():
            violations.append(
                FieldViolation(
                    f"{field}[{name}]",
                    f"label values are at most {LABEL_VALUE_MAX} printable characters",
                )
            )
    if violations:
        raise InvalidArgumentError(violations)
    return dict(labels)

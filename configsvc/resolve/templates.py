"""Templates: named, versioned layers a service extends, expanded lowest first."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from configsvc.errors import InvalidArgumentError
from configsvc.model.keys import segment_violation
from configsvc.resolve.merge import Layer, LayerValue

#: Longest chain of templates extending each other (the service's own extends is depth 1).
MAX_TEMPLATE_DEPTH = 16
#: Largest version number (etcd and the proto use int64).
MAX_TEMPLATE_VERSION = 2**63 - 1
#: Layer identities of templates are this prefix plus the reference, e.g. "template:web@3".
TEMPLATE_LAYER_PREFIX = "template:"

_REF_RE = re.compile(r"(?P<name>[^@]*)@(?P<version>[1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Template:
    """A named, versioned mapping key -> value that may extend other templates."""

    name: str
    version: int
    entries: Mapping[str, LayerValue] = field(default_factory=dict)
    extends: Sequence[str] = ()

    @property
    def ref(self) -> str:
        """The reference that names this template: ``name@version``."""
        return f"{self.name}@{self.version}"

    def layer(self) -> Layer:
        """This template as a resolution layer named ``template:name@version``."""
        return Layer(TEMPLATE_LAYER_PREFIX + self.ref, self.entries)


def parse_template_ref(ref: str, *, field_path: str = "extends") -> tuple[str, int]:
    """Split ``name@version``; the name uses the segment grammar, the version is 1..2^63-1.

    Versions are written without leading zeros, so each template has exactly
    one reference spelling.
    """
    match = _REF_RE.fullmatch(ref)
    violation = segment_violation(field_path, match["name"]) if match else None
    if match is None or violation is not None or int(match["version"]) > MAX_TEMPLATE_VERSION:
        detail = f" (name {violation.description})" if violation else ""
        raise InvalidArgumentError.single(
            field_path,
            f"template reference {ref[:80]!r} is invalid: expected name@version with a "
            f"version from 1 to {MAX_TEMPLATE_VERSION} without leading zeros{detail}",
        )
    return match["name"], int(match["version"])


def expand_templates(
    extends: Sequence[str],
    lookup: Callable[[str, int], Template | None],
    *,
    max_depth: int = MAX_TEMPLATE_DEPTH,
    field_path: str = "extends",
) -> list[Template]:
    """The templates behind ``extends``, lowest (applied first) first.

    Order: a depth-first walk in ``extends`` order that lists a template after
    everything it extends, so for A extends [B, C] the result is B's chain,
    then C's chain, then A; every template comes after the templates it
    extends. Diamonds: a template reached twice is applied once, at its first
    position (for A extends [B, C], B extends [D], C extends [D]: D, B, C, A).

    Raises InvalidArgumentError (field ``field_path``) whose message names the
    chain, root first: a cycle ("template cycle: web@3 -> base@1 -> web@3"), a
    missing template ("template base@2 not found (required by app@1 -> web@3)"),
    a chain longer than ``max_depth`` templates, or an invalid reference.
    """
    result: list[Template] = []
    done: set[str] = set()

    def fail(description: str) -> InvalidArgumentError:
        return InvalidArgumentError.single(field_path, description)

    def visit(ref: str, chain: tuple[str, ...]) -> None:
        path = " -> ".join((*chain, ref))
        if ref in chain:
            raise fail(f"template cycle: {path}")
        if ref in done:
            return
        if len(chain) >= max_depth:
            raise fail(f"template chain is deeper than {max_depth} templates: {path}")
        name, version = parse_template_ref(ref, field_path=field_path)
        template = lookup(name, version)
        if template is None:
            required = f" (required by {' -> '.join(chain)})" if chain else ""
            raise fail(f"template {ref} not found{required}")
        if template.ref != ref:
            raise ValueError(f"lookup({name!r}, {version}) returned template {template.ref}")
        for child in template.extends:
            visit(child, (*chain, ref))
        done.add(ref)
        result.append(template)

    for ref in extends:
        visit(ref, ())
    return result


def template_layers(templates: Sequence[Template]) -> list[Layer]:
    """The resolution layers of expanded templates, in the same (lowest first) order."""
    return [template.layer() for template in templates]

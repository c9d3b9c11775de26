"""Template chains: order, diamonds, cycles, missing templates, depth, and their layer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from configsvc.errors import InvalidArgumentError
from configsvc.resolve import (
    MAX_TEMPLATE_DEPTH,
    Layer,
    LayerValue,
    Source,
    Template,
    expand_templates,
    parse_template_ref,
    resolve,
    template_layers,
)
from tests.unit.resolve.support import layer

Graph = dict[str, list[str]]


def registry(graph: Graph) -> tuple[Callable[[str, int], Template | None], list[str]]:
    """A lookup over ``ref -> extends``, and the list of refs it was asked for."""
    calls: list[str] = []

    def lookup(name: str, version: int) -> Template | None:
        ref = f"{name}@{version}"
        calls.append(ref)
        if ref not in graph:
            return None
        return Template(name, version, {}, tuple(graph[ref]))

    return lookup, calls


def order(extends: list[str], graph: Graph, max_depth: int = MAX_TEMPLATE_DEPTH) -> list[str]:
    lookup, _ = registry(graph)
    return [t.ref for t in expand_templates(extends, lookup, max_depth=max_depth)]


@pytest.mark.parametrize(
    ("extends", "graph", "expected"),
    [
        pytest.param([], {}, [], id="none"),
        pytest.param(["a@1"], {"a@1": []}, ["a@1"], id="one"),
        pytest.param(
            ["a@1"],
            {"a@1": ["b@1", "c@1"], "b@1": [], "c@1": []},
            ["b@1", "c@1", "a@1"],
            id="extends-in-order-then-self",
        ),
        pytest.param(
            ["a@1"],
            {"a@1": ["b@1", "c@1"], "b@1": ["b0@1"], "b0@1": [], "c@1": ["c0@1"], "c0@1": []},
            ["b0@1", "b@1", "c0@1", "c@1", "a@1"],
            id="each-chain-whole",
        ),
        pytest.param(
            ["x@1", "y@1"],
            {"x@1": ["x0@1"], "x0@1": [], "y@1": []},
            ["x0@1", "x@1", "y@1"],
            id="several-roots",
        ),
        pytest.param(
            ["a@1"],
            {"a@1": ["b@1", "c@1"], "b@1": ["d@1"], "c@1": ["d@1"], "d@1": []},
            ["d@1", "b@1", "c@1", "a@1"],
            id="diamond",
        ),
        pytest.param(
            ["b@1", "c@1"],
            {"b@1": ["d@1"], "c@1": ["e@1", "d@1"], "d@1": [], "e@1": []},
            ["d@1", "b@1", "e@1", "c@1"],
            id="diamond-across-roots-first-position",
        ),
        pytest.param(["a@1", "a@1"], {"a@1": []}, ["a@1"], id="repeated-root"),
        pytest.param(
            ["a@1"], {"a@1": ["d@1", "d@1"], "d@1": []}, ["d@1", "a@1"], id="repeated-extends"
        ),
        pytest.param(
            ["c@1", "a@1"],
            {"a@1": ["b@1"], "b@1": ["c@1"], "c@1": []},
            ["c@1", "b@1", "a@1"],
            id="already-applied-lower",
        ),
        pytest.param(
            ["base@1", "base@2"],
            {"base@1": [], "base@2": ["base@1"]},
            ["base@1", "base@2"],
            id="versions-are-distinct-templates",
        ),
    ],
)
def test_order(extends: list[str], graph: Graph, expected: list[str]) -> None:
    assert order(extends, graph) == expected


def test_every_template_comes_after_what_it_extends_and_is_looked_up_once() -> None:
    graph = {
        "a@1": ["b@1", "c@1"],
        "b@1": ["d@1", "e@1"],
        "c@1": ["e@1", "d@1"],
        "d@1": ["f@1"],
        "e@1": ["f@1"],
        "f@1": [],
    }
    lookup, calls = registry(graph)
    result = [t.ref for t in expand_templates(["a@1", "c@1"], lookup)]
    assert result == ["f@1", "d@1", "e@1", "b@1", "c@1", "a@1"]
    for ref, parents in graph.items():
        assert all(result.index(p) < result.index(ref) for p in parents)
    assert sorted(calls) == sorted(graph)


@pytest.mark.parametrize(
    ("extends", "graph", "message"),
    [
        (
            ["web-service@3"],
            {"web-service@3": ["base@1"], "base@1": ["web-service@3"]},
            "template cycle: web-service@3 -> base@1 -> web-service@3",
        ),
        (["a@1"], {"a@1": ["a@1"]}, "template cycle: a@1 -> a@1"),
        (
            ["app@1"],
            {"app@1": ["web@3"], "web@3": ["base@1"], "base@1": ["web@3"]},
            "template cycle: app@1 -> web@3 -> base@1 -> web@3",
        ),
        (
            ["a@1"],
            {"a@1": ["ok@1", "b@1"], "ok@1": [], "b@1": ["c@1"], "c@1": ["a@1"]},
            "template cycle: a@1 -> b@1 -> c@1 -> a@1",
        ),
        (["base@2"], {}, "template base@2 not found"),
        (
            ["web-service@3"],
            {"web-service@3": ["base@2"]},
            "template base@2 not found (required by web-service@3)",
        ),
        (
            ["app@1"],
            {"app@1": ["web-service@3"], "web-service@3": ["base@1", "base@2"], "base@1": []},
            "template base@2 not found (required by app@1 -> web-service@3)",
        ),
        (["a@1"], {"a@1": ["Bad@1"]}, "template reference 'Bad@1' is invalid"),
    ],
)
def test_chain_errors_name_the_chain(extends: list[str], graph: Graph, message: str) -> None:
    lookup, _ = registry(graph)
    with pytest.raises(InvalidArgumentError) as info:
        expand_templates(extends, lookup)
    [violation] = info.value.violations
    assert violation.field == "extends"
    assert violation.description.startswith(message)
    assert info.value.message.startswith("extends: " + message)


def chain(length: int) -> Graph:
    """t1@1 extends t2@1 extends ... t<length>@1."""
    return {f"t{i}@1": [f"t{i + 1}@1"] if i < length else [] for i in range(1, length + 1)}


def test_depth_limit() -> None:
    deepest = chain(MAX_TEMPLATE_DEPTH)
    assert len(order(["t1@1"], deepest)) == MAX_TEMPLATE_DEPTH
    with pytest.raises(InvalidArgumentError) as info:
        order(["t1@1"], chain(MAX_TEMPLATE_DEPTH + 1))
    expected_chain = " -> ".join(f"t{i}@1" for i in range(1, MAX_TEMPLATE_DEPTH + 2))
    assert info.value.violations[0].description == (
        f"template chain is deeper than {MAX_TEMPLATE_DEPTH} templates: {expected_chain}"
    )
    assert order(["t1@1"], chain(3), max_depth=3) == ["t3@1", "t2@1", "t1@1"]
    with pytest.raises(InvalidArgumentError, match="deeper than 2 templates: t1@1 -> t2@1 -> t3@1"):
        order(["t1@1"], chain(3), max_depth=2)


def test_a_cycle_longer_than_the_limit_is_reported_as_too_deep() -> None:
    graph = chain(40)
    graph["t40@1"] = ["t1@1"]
    with pytest.raises(InvalidArgumentError, match="deeper than 16 templates"):
        order(["t1@1"], graph)


def test_error_field_can_be_named() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^service\.extends: template x@1 not found$"):
        expand_templates(["x@1"], registry({})[0], field_path="service.extends")


def test_lookup_returning_another_template_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match=r"lookup\('a', 1\) returned template a@2"):
        expand_templates(["a@1"], lambda name, version: Template(name, version + 1))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("web-service@3", ("web-service", 3)),
        ("a@1", ("a", 1)),
        ("a@9223372036854775807", ("a", 2**63 - 1)),
    ],
)
def test_parse_template_ref(ref: str, expected: tuple[str, int]) -> None:
    assert parse_template_ref(ref) == expected


@pytest.mark.parametrize(
    "ref",
    [
        "web",
        "web@",
        "@1",
        "web@0",
        "web@01",
        "web@-1",
        "web@1.0",
        "Web@1",
        "web@1@2",
        "w b@1",
        "web@9223372036854775808",
        "web@99999999999999999999",
        "-web@1",
        "a" * 64 + "@1",
        "",
    ],
)
def test_invalid_template_refs(ref: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        parse_template_ref(ref, field_path="extends[0]")
    assert info.value.violations[0].field == "extends[0]"
    assert "template reference" in info.value.message


def test_invalid_name_is_explained() -> None:
    with pytest.raises(InvalidArgumentError, match=r"\(name .* is invalid: must be 1 to 63"):
        parse_template_ref("Web@1")


def test_templates_sit_below_global_with_their_own_provenance() -> None:
    def value(text: str, revision: int, ref: str, key: str) -> LayerValue:
        return LayerValue(text, revision, f"templates/{ref}/{key}")

    graph = {
        "web-service@3": Template(
            "web-service",
            3,
            {
                "http": value(
                    '{"port":8080,"timeouts":{"read":5,"write":5},"tls":true}',
                    4,
                    "web-service@3",
                    "http",
                )
            },
            ("base@1",),
        ),
        "base@1": Template(
            "base",
            1,
            {
                "http": value('{"port":80,"gzip":true}', 2, "base@1", "http"),
                "log": value('{"level":"info"}', 2, "base@1", "log"),
            },
        ),
    }
    templates = expand_templates(["web-service@3"], lambda n, v: graph.get(f"{n}@{v}"))
    layers = template_layers(templates)
    assert [x.name for x in layers] == ["template:base@1", "template:web-service@3"]
    assert templates[0].layer() == layers[0]
    layers += [
        layer("global", {"log": '{"level":"warn"}'}, revision=9),
        layer("service", {"http": '{"tls":{"$unset":true},"timeouts":{"read":30}}'}, revision=11),
    ]
    result = resolve(layers)
    assert result.canonical_json() == (
        '{"http":{"gzip":true,"port":8080,"timeouts":{"read":30,"write":5}},"log":{"level":"warn"}}'
    )
    assert dict(result.provenance) == {
        "/http/gzip": Source("template:base@1", "templates/base@1/http", 2),
        "/http/port": Source("template:web-service@3", "templates/web-service@3/http", 4),
        "/http/timeouts/read": Source("service", "t/service/http", 11),
        "/http/timeouts/write": Source("template:web-service@3", "templates/web-service@3/http", 4),
        "/log/level": Source("global", "t/global/log", 9),
    }
    assert result.revision == 11
    assert Layer("template:x@1") == Template("x", 1).layer()

"""Value validation and page tokens: pure functions, no server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configsvc.errors import InvalidArgumentError
from configsvc.model.values import VALUE_MAX_BYTES, validate_json_value, validate_reason
from configsvc.rpc import pagination


def test_value_kept_byte_for_byte() -> None:
    text = '{ "b": 1.10, "a": 9007199254740993 }'
    assert validate_json_value(text) == text.encode()


def test_multibyte_value_limit_counts_bytes() -> None:
    text = '"' + "é" * (VALUE_MAX_BYTES // 2) + '"'
    with pytest.raises(InvalidArgumentError, match="bytes"):
        validate_json_value(text)


def test_reason_rules() -> None:
    assert validate_reason("tab\tis fine") == "tab\tis fine"
    with pytest.raises(InvalidArgumentError, match="control characters"):
        validate_reason("line\nbreak")


@given(position=st.text(max_size=200), scope=st.tuples(st.text(max_size=20), st.text(max_size=20)))
def test_tokens_round_trip_only_for_their_scope(position: str, scope: tuple[str, str]) -> None:
    token = pagination.encode("list", scope, position)
    assert pagination.decode(token, "list", scope) == position
    with pytest.raises(InvalidArgumentError):
        pagination.decode(token, "history", scope)
    with pytest.raises(InvalidArgumentError):
        pagination.decode(token, "list", (*scope, "x"))


@given(st.text(min_size=1, max_size=300))
def test_arbitrary_tokens_never_crash(token: str) -> None:
    try:
        pagination.decode(token, "list", ("a",))
    except InvalidArgumentError as exc:
        assert exc.violations[0].field == "page_token"
    else:  # pragma: no cover - would need a forged sha256 fingerprint
        raise AssertionError("an arbitrary string was accepted as a token")


def test_empty_token_is_first_page() -> None:
    assert pagination.decode("", "list", ()) is None

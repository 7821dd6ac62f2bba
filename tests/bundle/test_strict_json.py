"""Strict JSON for bundles: depth told from the text alone, duplicate keys and NaN refused,
the same whether a document is read whole or walked in chunks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qex_archive.bundle.format import BAD_JSON, BundleError, Limits, nested_deeper_than
from qex_archive.bundle.jsonstream import ELEMENT, MEMBER, parse_json, walk_object

tricky_text = st.text(alphabet=st.sampled_from('ab"\\[]{}\n\u00e9\u2603 :,'), max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=20,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


@given(value=values, ascii_only=st.booleans(), indent=st.sampled_from([None, 1]))
def test_depth_from_text_equals_depth_of_the_value(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    for limit in range(8):
        assert nested_deeper_than(raw, limit) == (depth(value) > limit), (raw, limit)


def test_deep_nesting_is_refused() -> None:
    limits = Limits(max_json_depth=64)
    assert parse_json(b"[" * 64 + b"]" * 64, "m", limits) is not None
    for raw in (b"[" * 65 + b"]" * 65, b"[" * 100_000 + b"]" * 100_000, b"[" * 100_000):
        with pytest.raises(BundleError, match="nested deeper than 64") as caught:
            parse_json(raw, "m", limits)
        assert caught.value.code == BAD_JSON


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": 1, "a": 2}', "duplicate JSON key 'a'"),
        (b'{"x": {"b": 1, "c": 2, "b": 3}}', "duplicate JSON key 'b'"),
        (b'{"a": NaN}', "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b'{"a": 1', "not valid UTF-8 JSON"),
        (b'"\xff"', "not valid UTF-8 JSON"),
    ],
)
def test_strictness(raw: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        parse_json(raw, "m", Limits())


def _walked(raw: bytes, *, keep: bool, chunk: int = 1 << 20) -> list[tuple[str, str, Any]]:
    pieces = (raw[i : i + chunk] for i in range(0, len(raw), chunk))
    return list(walk_object(pieces, "m", Limits(), "runs", keep=keep))


@given(value=st.dictionaries(tricky_text, values, max_size=4), chunk=st.integers(1, 40))
def test_walking_in_chunks_gives_what_parsing_whole_gives(value: Any, chunk: int) -> None:
    raw = json.dumps({**value, "runs": [value, [1, 2.5], "x"]}).encode()
    events = _walked(raw, keep=True, chunk=chunk)
    members = {key: item for kind, key, item in events if kind == MEMBER}
    elements = [item for kind, _, item in events if kind == ELEMENT]
    assert members == value and elements == [value, [1, 2.5], "x"]


# A value not kept (the RO-Crate's) that runs past the text in memory is walked a level down:
# the same rules hold deep inside it, past the first MiBs.
LONG = b'{"@graph": [{"hasPart": [' + b",".join([b'{"@id": "abcdefgh"}'] * 300_000)


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        (b', {"a": 1, "a": 2}]}]}', "duplicate JSON key 'a'"),
        (b", NaN]}]}", "NaN is not JSON"),
        (b", " + b"[" * 70 + b"]" * 70 + b"]}]}", "nested deeper than 64"),
        (b', "\\ud800"]}]}', "lone surrogate"),
        (b", 1}]}", "expected ',' or ']'"),
        (b"]}]", "not valid UTF-8 JSON"),
    ],
)
def test_a_long_value_not_kept_is_checked_to_its_end(tail: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message) as caught:
        _walked(LONG + tail, keep=False)
    assert caught.value.code == BAD_JSON


def test_a_long_value_not_kept_is_accepted_when_sound() -> None:
    events = _walked(LONG + b"]}]}", keep=False)
    assert [(kind, key) for kind, key, _ in events] == [(MEMBER, "@graph")]

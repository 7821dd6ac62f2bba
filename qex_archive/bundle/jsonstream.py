"""A JSON object read from chunks one member at a time, and one array in it one element at a
time: how a description of 100,000 runs is checked in the memory of a few runs.

Neither the standard library nor the runtime dependencies offer an incremental parser, so
only the top level is walked here (braces, keys, colons, commas); every value, each array
element included, is parsed by CPython's own decoder (``raw_decode``) under strict rules
(:func:`.format.strict_decoder`, :func:`.format.check_parsed`): no duplicate keys, no NaN or
Infinity, no lone surrogates, the size, value count and depth of what is parsed at once
capped by :class:`.format.Limits`.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .format import (
    BAD_JSON,
    TOO_LARGE,
    BundleError,
    Limits,
    check_json_values,
    check_parsed,
    strict_decoder,
)

_LONG = 2 << 20  # waiting text this long is mostly one value: count before parsing it
_SPACE = re.compile(r"[ \t\n\r]*")
MEMBER, ELEMENT, DOCUMENT = "member", "element", "document"


class _Text:
    """The decoded text not yet consumed, refilled from the chunks on demand."""

    def __init__(self, chunks: Iterable[bytes], member: str, limits: Limits, keep: bool) -> None:
        self._chunks = iter(chunks)
        self.keep = keep
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.member, self.limits = member, limits
        self.text, self.pos, self.done = "", 0, False
        self._counted_to = 0  # the text before this was counted by _check_values

    def more(self) -> bool:
        """Append the next chunk; ``False`` at the end of the member. What is waiting to be
        parsed stays under ``max_json_size`` bytes and ``max_json_values`` values."""
        if self.done:
            return False
        if self.pos > (1 << 20):  # drop what was consumed, keeping the copy cost linear
            self.text, self._counted_to = self.text[self.pos :], self._counted_to - self.pos
            self.pos = 0
        try:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.done = True
                self.text += self._utf8.decode(b"", final=True)
                return False
            piece = self._utf8.decode(chunk)
        except UnicodeDecodeError:
            raise BundleError(
                BAD_JSON, "not valid UTF-8 JSON (bad UTF-8 bytes)", self.member
            ) from None
        self.text += piece
        # a value over the cap is being read (check_parsed measures each value exactly)
        if len(self.text) - self.pos > self.limits.max_json_size + _LONG:
            raise BundleError(
                TOO_LARGE,
                f"a JSON value over {self.limits.max_json_size} bytes; raise --max-json-size",
                self.member,
            )
        return True

    def skip_space(self) -> str:
        """The next character after whitespace ('' at the end)."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def expect(self, allowed: str, what: str) -> str:
        found = self.skip_space()
        if not found or found not in allowed:
            self.fail(f"expected {what}")
        self.pos += 1
        return found

    def value(self, level: int = 0) -> Any:
        """The next JSON value (nested ``level`` deep), parsed whole by CPython's decoder. One
        that is not kept and runs past the text in memory by more than a few MiB is walked a
        level down instead, so that the text held stays that short."""
        self.skip_space()
        decoder = strict_decoder(self.member, self.keep)
        grown = False
        while True:
            start = self.pos
            if grown or start >= self._counted_to:
                self._check_values(start)
            try:
                value, end = decoder.raw_decode(self.text, start)
            except RecursionError:
                raise BundleError(
                    BAD_JSON, f"JSON nested deeper than {self.limits.max_json_depth}", self.member
                ) from None
            except json.JSONDecodeError as exc:
                if (
                    not self.keep
                    and not self.done
                    and len(self.text) - start >= _LONG
                    and self.text[start] in "[{"
                ):
                    return self._walk(level)
                grown = self._grow()
                if grown:  # maybe cut off at the end of the chunk: read on, retry
                    continue
                raise BundleError(
                    BAD_JSON, f"not valid UTF-8 JSON ({str(exc)[:120]})", self.member
                ) from None
            if end == len(self.text):  # a number may go on in the next chunk
                grown = self._grow()
                if grown:
                    continue
            check_parsed(self.text, start, end, value, self.member, self.limits, self.keep, level)
            self.pos = end
            return value

    def key(self, keys: set[str], level: int = 0) -> str:
        """The next key of an object and its colon; refused if ``keys`` (the object's keys
        so far, to which it is added) holds it already."""
        if self.skip_space() != '"':
            self.fail("expected a key in double quotes")
        key: str = self.value(level)
        if key in keys:
            raise BundleError(BAD_JSON, f"duplicate JSON key {key[:80]!r}", self.member)
        if len(keys) >= self.limits.max_json_values:
            raise BundleError(
                TOO_LARGE, "an object of more keys than --max-json-values; raise it", self.member
            )
        keys.add(key)
        self.expect(":", "':'")
        return key

    def _walk(self, level: int) -> None:
        """Check the array or object at the current place element by element, keeping none."""
        if level >= self.limits.max_json_depth:
            raise BundleError(
                BAD_JSON, f"JSON nested deeper than {self.limits.max_json_depth}", self.member
            )
        closing = "}" if self.text[self.pos] == "{" else "]"
        self.pos += 1
        if self.skip_space() == closing:
            self.pos += 1
            return
        keys: set[str] | None = set() if closing == "}" else None
        while True:
            if keys is not None:
                self.key(keys, level + 1)
            self.value(level + 1)
            if self.expect("," + closing, f"',' or '{closing}'") == closing:
                return

    def _grow(self) -> bool:
        """Read on until the text waiting to be parsed has doubled (a value that spans many
        chunks is parsed a logarithmic number of times); ``False`` at the end."""
        wanted = 2 * (len(self.text) - self.pos)
        grew = False
        while len(self.text) - self.pos < wanted and self.more():
            grew = True
        return grew

    def _check_values(self, start: int) -> None:
        """Before parsing from ``start`` in a long text, count the values waiting (each stretch
        of text is counted once, and again only when a value runs past it): whatever is
        parsed has at most that many, so a flood of tiny values is refused before it is
        built. Short texts are left to the exact count after parsing."""
        text = self.text
        if len(text) - start < _LONG:
            return  # check_parsed counts exactly once the value is parsed
        self._counted_to = len(text)
        values = sum(text.count(mark, start) for mark in ",[{")
        check_json_values(values, self.member, self.limits)

    def fail(self, what: str) -> None:
        raise BundleError(
            BAD_JSON, f"not valid UTF-8 JSON ({what} at character {self.pos})", self.member
        )


def walk_object(
    chunks: Iterable[bytes], member: str, limits: Limits, streamed: str, *, keep: bool = True
) -> Iterator[tuple[str, str, Any]]:
    """The top-level members of the JSON object in ``chunks``, as ``(MEMBER, key, value)``;
    the array under the key ``streamed`` as one ``(ELEMENT, key, item)`` per item. A document
    that is not an object is one ``(DOCUMENT, "", value)``, for the caller to refuse. With
    ``keep=False``, the text is checked but objects come out as ``None``."""
    text = _Text(chunks, member, limits, keep)
    if text.skip_space() != "{":
        yield DOCUMENT, "", text.value()
        _expect_end(text)
        return
    text.pos += 1
    keys: set[str] = set()
    if text.skip_space() == "}":
        text.pos += 1
        yield DOCUMENT, "", {}
        _expect_end(text)
        return
    while True:
        key = text.key(keys)
        if key == streamed and text.skip_space() == "[":
            text.pos += 1
            if text.skip_space() == "]":
                text.pos += 1
                yield MEMBER, key, []
            else:
                while True:
                    yield ELEMENT, key, text.value()
                    if text.expect(",]", "',' or ']'") == "]":
                        break
        else:
            yield MEMBER, key, text.value()
        if text.expect(",}", "',' or '}'") == "}":
            break
    _expect_end(text)


def parse_json(raw: bytes, member: str, limits: Limits) -> Any:
    """One whole JSON document under the same rules (the parts of a bundle read whole)."""
    text = _Text([raw], member, limits, keep=True)
    value = text.value()
    _expect_end(text)
    return value


def _expect_end(text: _Text) -> None:
    if text.skip_space():
        text.fail("extra data after the JSON value")

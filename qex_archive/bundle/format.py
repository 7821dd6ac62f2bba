"""The exchange bundle's format (versions 1 and 2): names, limits, error codes, the schema and
strict JSON.

The error codes and :class:`BundleError` are defined in :mod:`qex_archive.codes` and
:mod:`qex_archive.errors` and re-exported here, under the names the bundle modules import.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .._jsonvalues import is_text
from ..codes import BAD_BAG_INFO as BAD_BAG_INFO
from ..codes import BAD_BAGIT as BAD_BAGIT
from ..codes import BAD_JSON as BAD_JSON
from ..codes import BAD_MANIFEST as BAD_MANIFEST
from ..codes import BAD_NAME as BAD_NAME
from ..codes import BAD_NPY as BAD_NPY
from ..codes import CHECKSUM as CHECKSUM
from ..codes import CONFLICT as CONFLICT
from ..codes import DUPLICATE_NAME as DUPLICATE_NAME
from ..codes import EXTRA as EXTRA
from ..codes import INCONSISTENT as INCONSISTENT
from ..codes import MISSING as MISSING
from ..codes import NOT_A_ZIP as NOT_A_ZIP
from ..codes import NOT_REGULAR as NOT_REGULAR
from ..codes import OVERLAP as OVERLAP
from ..codes import OXUM as OXUM
from ..codes import RATIO as RATIO
from ..codes import SCHEMA as SCHEMA
from ..codes import SIZE_MISMATCH as SIZE_MISMATCH
from ..codes import TAGMANIFEST_MISMATCH as TAGMANIFEST_MISMATCH
from ..codes import TOO_LARGE as TOO_LARGE
from ..codes import TOO_MANY_MEMBERS as TOO_MANY_MEMBERS
from ..codes import TRAILING_DATA as TRAILING_DATA
from ..codes import UNSUPPORTED_ZIP as UNSUPPORTED_ZIP
from ..codes import VERSION as VERSION
from ..errors import BundleError as BundleError
from ..errors import QexError

FORMAT_VERSION = 2  # the newest this qex-archive writes and reads
READABLE_VERSIONS = (1, 2)  # 2 adds each run's tags and notes; 1 is read forever
BUNDLE_SUFFIX = ".qexb"
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
BAGIT = "bagit.txt"
BAG_INFO = "bag-info.txt"
MANIFEST = "manifest-sha256.txt"
TAGMANIFEST = "tagmanifest-sha256.txt"
TAG_FILES = (BAGIT, BAG_INFO, MANIFEST, TAGMANIFEST)
DESCRIPTION = "data/qex-bundle.json"
RO_CRATE = "data/ro-crate-metadata.json"
REPORT = "data/report.html"  # the experiment report of the packed runs (pack --with-report)
RUN_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RUN_ID_PATTERN = re.compile(RUN_ID)
# Every payload member: names qex computes itself, so anything else is refused outright.
PAYLOAD_NAME = re.compile(
    rf"^data/(?:qex-bundle\.json|ro-crate-metadata\.json|report\.html"
    rf"|results/{RUN_ID}_rho\.npy|artifacts/{RUN_ID}_[a-z][a-z0-9_]{{0,39}}\.[a-z0-9]{{1,10}})$"
)
CHUNK = 1 << 20
# The files a bundle may carry for a run besides its density matrix (rendered pages and
# attachments), by extension, with the one media type each must be declared with.
MEDIA_TYPES = {
    "html": "text/html",
    "svg": "image/svg+xml",
    "png": "image/png",
    "npy": "application/x-npy",
    "json": "application/json",
    "txt": "text/plain",
    "csv": "text/csv",
    "bin": "application/octet-stream",
    "qasm": "text/x-openqasm",
    "qpy": "application/x-qpy",
}


@dataclass(frozen=True)
class Limits:
    """Caps checked before anything is inflated; each names the option that raises it."""

    max_members: int = 300_000  # 100,000 runs with their Bloch pages have 200,006
    max_total_size: int = 64 * 1024**3
    max_file_size: int = 16 * 1024**3
    max_ratio: float = 200.0
    max_json_size: int = 32 * 1024**2
    max_json_values: int = 1_000_000
    max_json_depth: int = 64


def fold(name: str) -> str:
    """What two names collide on: case-insensitive, Unicode-normalised file systems."""
    return unicodedata.normalize("NFC", name).casefold()


def _check_caps(raw: bytes | bytearray, member: str, limits: Limits, level: int = 0) -> None:
    """Size, values and depth (for text found ``level`` deep in its document)."""
    openers = _check_size_and_values(raw, member, limits)
    # no deeper than it has brackets: the scan is needed only past that
    limit = limits.max_json_depth - level
    if openers > limit and nested_deeper_than(raw, limit):
        raise BundleError(BAD_JSON, f"JSON nested deeper than {limits.max_json_depth}", member)


def _check_size_and_values(raw: bytes | bytearray, member: str, limits: Limits) -> int:
    """The number of ``[`` and ``{``, once the size and the values are within the caps."""
    check_json_size(len(raw), "bytes", member, limits)
    openers = raw.count(b"[") + raw.count(b"{")
    check_json_values(raw.count(b",") + openers, member, limits)
    return openers


def check_json_size(size: int, unit: str, member: str, limits: Limits) -> None:
    if size > limits.max_json_size:
        raise BundleError(
            TOO_LARGE, f"{size} {unit} of JSON is over the limit; raise --max-json-size", member
        )


def check_json_values(values: int, member: str, limits: Limits) -> None:
    """``values``: counted from the separators (``,``, ``[``, ``{``), so about so many."""
    if values > limits.max_json_values:
        raise BundleError(
            TOO_LARGE,
            f"about {values:,} JSON values, over the limit; raise --max-json-values",
            member,
        )


def check_parsed(
    text: str,
    start: int,
    end: int,
    value: Any,
    member: str,
    limits: Limits,
    kept: bool = True,
    level: int = 0,
) -> None:
    """The strict rules for the value parsed from ``text[start:end]``: its size,
    values and depth under the caps, no lone surrogates. A long value is measured in place
    (characters, not bytes) and its depth on the parsed value, as the text scan's pieces would
    double what a value of a million parts holds in memory; a long value parsed without
    keeping it (``kept=False``) is left to CPython's own nesting limit (or walked by the
    caller, see :mod:`.jsonstream`). ``level``: how deep in the document the value lies."""
    if end - start < _SCAN_BELOW:
        _check_caps(text[start:end].encode("utf-8", "surrogatepass"), member, limits, level)
    else:
        check_json_size(end - start, "characters", member, limits)
        check_json_values(sum(text.count(mark, start, end) for mark in ",[{"), member, limits)
        if kept and _deeper_than(value, limits.max_json_depth - level):
            raise BundleError(BAD_JSON, f"JSON nested deeper than {limits.max_json_depth}", member)
    if _SURROGATE_ESCAPE.search(text, start, end):
        if not kept:  # the values are needed to tell
            value = strict_decoder(member).decode(text[start:end])
        _check_surrogates(text[start:end], value, member)


_SCAN_BELOW = 256 * 1024


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests arrays and objects more than ``limit`` deep."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return False
        level = [
            item
            for node in level
            if isinstance(node, (dict, list))
            for item in (node.values() if isinstance(node, dict) else node)
            if isinstance(item, (dict, list))
        ]
    return bool(level)


@cache
def strict_decoder(member: str, keep: bool = True) -> json.JSONDecoder:
    """CPython's decoder, refusing duplicate keys and NaN/Infinity with a bundle error. With
    ``keep=False`` every object parses to ``None``: the text is checked, nothing is built."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any] | None:
        result = dict(items) if keep else {key: None for key, _ in items}
        if len(result) != len(items):
            seen: set[str] = set()
            for key, _ in items:
                if key in seen:
                    raise BundleError(BAD_JSON, f"duplicate JSON key {key[:80]!r}", member)
                seen.add(key)
        return result if keep else None

    def constant(name: str) -> Any:
        raise BundleError(BAD_JSON, f"{name} is not JSON", member)

    return json.JSONDecoder(object_pairs_hook=pairs, parse_constant=constant)


def _check_surrogates(text: str, value: Any, member: str) -> None:
    if _SURROGATE_ESCAPE.search(text) and not is_text(json.dumps(value, ensure_ascii=False)):
        raise BundleError(
            BAD_JSON, "a string holds a lone surrogate (\\udXXX), which is not text", member
        )


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')
_SQUARE = bytes.maketrans(b"{}", b"[]")


def nested_deeper_than(raw: bytes | bytearray, limit: int) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` deep, told before parsing
    and at C speed: escapes dropped, then strings, leaving the brackets, whose innermost pairs
    are removed round by round. Exact for valid JSON; invalid JSON is the parser's to refuse."""
    without_escapes = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING.sub(b"", without_escapes.translate(None, _NOT_STRUCTURE)).translate(_SQUARE)
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")
        if inner == brackets:  # nothing left, or unbalanced: the parser will say what is wrong
            return False
        brackets = inner
    return b"[]" in brackets


def schema_path() -> Path:
    """``bundle.schema.json``: inside the installed package, or ``schemas/`` of a checkout."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "schemas", package.parent / "schemas"):
        path = candidate / "bundle.schema.json"
        if path.is_file():
            return path
    raise QexError("bundle.schema.json is missing from this installation; reinstall qex-archive")


@cache
def _schema_document() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


def _part(part: str | None) -> dict[str, Any]:
    """The whole schema, one of its ``$defs``, or ``"head"``: the description without its
    runs (which are read and checked one by one)."""
    schema = _schema_document()
    if part is None:
        return schema
    if part != HEAD:
        return {"$defs": schema["$defs"], "$ref": f"#/$defs/{part}"}
    head = dict(schema)
    head["properties"] = {k: v for k, v in schema["properties"].items() if k != "runs"}
    head["required"] = [k for k in schema["required"] if k != "runs"]
    return head


HEAD = "head"


@cache
def _validator(part: str | None) -> Any:
    """jsonschema's validator for a part of the schema (see :func:`_part`)."""
    import jsonschema

    definitions = _schema_document().get("$defs", {})
    target = definitions[part] if part in definitions else _part(part)
    # Inlining the local $refs once makes validating thousands of runs a third faster.
    return jsonschema.Draft202012Validator(_inline_refs(target, definitions))


@cache
def _predicate(part: str | None) -> Callable[[Any], bool]:
    """The fast answer: the schema compiled to Python by ``fastjsonschema`` (ahead of time for
    the parts read most, see :mod:`.schema_checks`; else once per process, 6-11 ms) checks a
    bundle's run record in about 12 us where ``jsonschema`` takes about 100 us. Formats are
    annotations here, as in ``jsonschema``."""
    import copy

    import fastjsonschema

    from .schema_checks import compiled

    # compile() rewrites the references it resolves: it gets a copy
    validate = compiled(part) or fastjsonschema.compile(
        copy.deepcopy(_part(part)), use_formats=False
    )

    def is_valid(value: Any) -> bool:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return is_valid


def schema_problem(value: Any, part: str | None = None, at: str = "") -> str | None:
    """``None`` when ``value`` follows the bundle schema (or its part ``part``: a ``$defs``
    entry such as ``"run"``, or ``"head"``); otherwise where (under the path ``at``) and what
    is wrong, in jsonschema's words. The fast compiled predicate answers first; jsonschema is
    asked only to explain a refusal."""
    if _predicate(part)(value):
        return None
    errors = sorted(_validator(part).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return "does not follow the bundle schema"
    first = errors[0]
    where = "/".join([*filter(None, [at]), *(str(step) for step in first.absolute_path)])
    where = where or "(top)"
    return f"at {where}: {first.message[:200]}"


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/") and len(node) == 1:
            return _inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {
            key: _inline_refs(value, definitions) for key, value in node.items() if key != "$defs"
        }
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    return node


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact C-speed encoding, UTF-8: the same value always gives the same bytes."""
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return (text + "\n").encode()

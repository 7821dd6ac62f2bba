"""Plain-JSON values: checking what users hand us, and writing it canonically.

The archive stores params and metadata as JSON text that any tool can read back, so only
strict JSON goes in: string keys, finite numbers, no objects JSON cannot express.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import cache
from typing import Any

from .errors import InvalidJSON

MAX_DEPTH = 64

JSONValue = Any


def dumps(value: JSONValue) -> str:
    """Canonical JSON text: sorted keys, no NaN, compact, UTF-8 kept as is."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False
    )


def json_safe(value: object, where: str, _depth: int = 0) -> JSONValue:
    """Return ``value`` as plain JSON data, or raise :class:`InvalidJSON` naming ``where``.

    Tuples and numpy arrays become lists and numpy scalars become Python numbers, since
    that is what a scientist hands over from a notebook; anything without an obvious JSON
    spelling is refused rather than stringified.
    """
    if _depth > MAX_DEPTH:
        raise InvalidJSON(f"{where}: nested deeper than {MAX_DEPTH} levels; flatten it")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidJSON(
                f"{where} is {value!r}, which JSON cannot store; use null or a string instead"
            )
        return float(value)
    if isinstance(value, str):
        _check_text(value, where)
        return value
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidJSON(
                    f"{where} has the key {key!r} of type {type(key).__name__}; "
                    "keys must be strings"
                )
            _check_text(key, f"{where} key {key!r}")
            out[key] = json_safe(item, f"{where}[{key!r}]", _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(item, f"{where}[{i}]", _depth + 1) for i, item in enumerate(value)]
    if type(value).__module__ == "numpy":
        # numpy scalars and arrays, without importing numpy here
        converted = value.tolist()  # type: ignore[attr-defined]
        if isinstance(converted, complex):
            raise InvalidJSON(
                f"{where} is a complex number; store its real and imaginary parts separately"
            )
        return json_safe(converted, where, _depth)
    if isinstance(value, complex):
        raise InvalidJSON(
            f"{where} is a complex number; store its real and imaginary parts separately"
        )
    raise InvalidJSON(
        f"{where} is a {type(value).__name__}, which is not JSON; "
        "use numbers, strings, booleans, null, lists and dicts"
    )


def to_json_data(value: object, _depth: int = 0) -> JSONValue:
    """Best-effort JSON data from what a plugin reports: NaN/Inf become null, tuples and
    arrays become lists, numpy scalars Python numbers, complex numbers ``[re, im]``, and
    anything else its ``str()``."""
    if _depth > MAX_DEPTH:
        return None
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) else value.encode("utf-8", "replace").decode()
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, complex):
        return [to_json_data(value.real), to_json_data(value.imag)]
    if isinstance(value, Mapping):
        return {str(key): to_json_data(item, _depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_json_data(item, _depth + 1) for item in items]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return to_json_data(value.tolist(), _depth)
    return str(value)


def json_object(value: object, where: str) -> dict[str, JSONValue]:
    """Check that ``value`` is a dict of plain JSON and return a clean copy."""
    if not isinstance(value, Mapping):
        raise InvalidJSON(f"{where} must be a dict, not {type(value).__name__}")
    result: dict[str, JSONValue] = json_safe(value, where)
    return result


DAMAGED = object()  # what a stored JSON column that does not parse reads as; equals nothing


def stored_json(text: object) -> object:
    """A JSON column as stored; :data:`DAMAGED` when it is not JSON text (rows written by
    other tools may hold anything)."""
    if not isinstance(text, (str, bytes)):
        return DAMAGED
    try:
        if isinstance(text, str):
            return _strict_decoder().decode(text)
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, RecursionError):  # NaN, 1e999 and deep nesting are not stored JSON
        return DAMAGED


@cache
def _strict_decoder() -> json.JSONDecoder:
    """One decoder for every stored column (``json.loads`` with hooks builds one per call)."""
    return json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def parse_loose(text: str) -> JSONValue:
    """A command-line value: JSON when it parses as JSON (``3``, ``0.5``, ``true``, ``[1,2]``),
    otherwise the text itself, so ``--param backend=aer`` needs no quotes."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError:
        return text
    except RecursionError:
        raise InvalidJSON(f"value nested deeper than {MAX_DEPTH} levels; flatten it") from None
    return value


def parse_strict(text: str, where: str) -> JSONValue:
    """JSON typed by a user (``--metadata``): a one-line error for anything else."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise InvalidJSON(f"{where} is nested deeper than {MAX_DEPTH} levels; flatten it") from None
    except ValueError as exc:
        raise InvalidJSON(f"{where} is not valid JSON ({exc})") from None


def is_text(value: str) -> bool:
    """Whether a string can be stored and printed: no lone surrogates (which is what a
    command-line argument holds for bytes that are not UTF-8)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond the range of a double")
    return value


def _check_text(text: str, where: str) -> None:
    if not is_text(text):
        raise InvalidJSON(f"{where} contains a lone surrogate, which is not valid UTF-8")


# -- stored data, read-only ------------------------------------------------------------------

READ_ONLY = (
    "run data is read-only: params and metadata are what the archive stored, and a change "
    "here would never be saved. Mark a run with tags or notes (run.set_tag, run.add_note) or "
    "record a new run; copy.deepcopy(...) gives a copy of your own to change"
)


def _read_only(self: object, *args: object, **kwargs: object) -> Any:
    raise TypeError(READ_ONLY)


class FrozenDict(dict[str, Any]):
    """A JSON object as stored: a ``dict`` (``json.dumps``, ``==`` and ``isinstance(x, dict)``
    work as for any dict) whose every change raises :class:`TypeError`. ``copy()`` and
    ``copy.copy`` give a plain dict of the same items, ``copy.deepcopy`` plain data
    throughout (see :func:`plain_json`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return plain_json(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return dict.__repr__(self)


class FrozenList(list[Any]):
    """A JSON array as stored: a ``list`` whose every change raises :class:`TypeError` (see
    :class:`FrozenDict`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __copy__(self) -> list[Any]:
        return list(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return plain_json(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __repr__(self) -> str:
        return list.__repr__(self)


def frozen_json(value: JSONValue) -> JSONValue:
    """Parsed JSON data made read-only: every dict a :class:`FrozenDict`, every list a
    :class:`FrozenList` (numbers, strings, booleans and null are immutable already)."""
    if isinstance(value, dict):
        if type(value) is FrozenDict:
            return value
        return FrozenDict({key: frozen_json(item) for key, item in value.items()})
    if isinstance(value, list):
        if type(value) is FrozenList:
            return value
        return FrozenList([frozen_json(item) for item in value])
    return value


def plain_json(value: JSONValue) -> JSONValue:
    """The same data as plain, changeable dicts and lists (undoes :func:`frozen_json`)."""
    if isinstance(value, dict):
        return {key: plain_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_json(item) for item in value]
    return value

"""Selecting runs: one filter type shared by the Python API, ``runs`` and ``pack``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidFilter
from .jsonvalues import is_text, parse_loose
from .timeutil import to_timestamp

OPERATORS = {"=": "=", "==": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_CONDITION = re.compile(r"^(?P<key>[^=<>!]+?)\s*(?P<op>>=|<=|!=|==|=|<|>)\s*(?P<value>.*)$", re.S)

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    key: str
    op: str
    value: Scalar


@dataclass(frozen=True)
class RunFilter:
    """Which runs to select. Every given criterion must hold."""

    experiment: str | None = None
    backend: str | None = None
    since: float | None = None
    until: float | None = None
    conditions: tuple[Condition, ...] = field(default_factory=tuple)

    @classmethod
    def build(
        cls,
        *,
        experiment: str | None = None,
        backend: str | None = None,
        since: object = None,
        until: object = None,
        where: Mapping[str, Any] | None = None,
    ) -> RunFilter:
        """Check user-facing arguments. ``where`` maps a parameter name to a value (equality)
        or to ``{operator: value}`` with operators ``= != < <= > >=``, e.g.
        ``{"shots": 1024, "theta": {">=": 0.1, "<": 0.5}}``."""
        for name, text in (("experiment", experiment), ("backend", backend)):
            if text is not None and not isinstance(text, str):
                raise InvalidFilter(f"{name} must be a string, not {type(text).__name__}")
            if text is not None and not is_text(text):
                raise InvalidFilter(f"{name} {text!r} is not valid UTF-8 text")
        return cls(
            experiment=experiment,
            backend=backend,
            since=None if since is None else to_timestamp(since, "since"),
            until=None if until is None else to_timestamp(until, "until"),
            conditions=tuple(_conditions(where or {})),
        )

    def sql(self, *, damaged_json: bool = False) -> tuple[str, list[Any]]:
        """A WHERE clause (possibly empty) and its arguments. With ``damaged_json``, rows whose
        params are not valid JSON (written by other tools) match no parameter condition
        instead of making SQLite fail; it costs a second parse per row, so it is the fallback."""
        params = "(CASE WHEN json_valid(params) THEN params END)" if damaged_json else "params"
        clauses: list[str] = []
        args: list[Any] = []
        if self.experiment is not None:
            clauses.append("experiment_name = ?")
            args.append(self.experiment)
        if self.backend is not None:
            clauses.append("backend_name = ?")
            args.append(self.backend)
        if self.since is not None:
            clauses.append("timestamp >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("timestamp <= ?")
            args.append(self.until)
        for condition in self.conditions:
            path = '$."' + condition.key + '"'
            if condition.value is None:
                negate = "NOT " if condition.op == "!=" else ""
                clauses.append(f"json_type({params}, ?) IS {negate}'null'")
                args.append(path)
            else:
                clauses.append(f"json_extract({params}, ?) {OPERATORS[condition.op]} ?")
                args.extend([path, condition.value])
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def parse_condition(text: str) -> Condition:
    """``shots=1024``, ``theta>=0.1``, ``name!=ghz`` as typed after ``--param``."""
    match = _CONDITION.match(text)
    if not match:
        raise InvalidFilter(
            f"parameter filter {text!r} is not KEY=VALUE "
            "(or KEY>=VALUE, KEY<VALUE, KEY!=VALUE, ...)"
        )
    return _condition(
        match.group("key").strip(), match.group("op"), parse_loose(match.group("value"))
    )


def _conditions(where: Mapping[str, Any]) -> list[Condition]:
    if not isinstance(where, Mapping):
        raise InvalidFilter(
            f"where must be a dict of parameter conditions, not {type(where).__name__}"
        )
    out: list[Condition] = []
    for key, spec in where.items():
        if isinstance(spec, Mapping):
            if not spec:
                raise InvalidFilter(f"where[{key!r}] is an empty dict; give {{operator: value}}")
            out.extend(_condition(key, op, value) for op, value in spec.items())
        else:
            out.append(_condition(key, "=", spec))
    return out


def _condition(key: object, op: object, value: object) -> Condition:
    if not isinstance(key, str) or not key or '"' in key or not is_text(key):
        raise InvalidFilter(
            f"parameter name {key!r} cannot be filtered on (empty, not UTF-8 text, "
            "or contains '\"')"
        )
    if op not in OPERATORS:
        raise InvalidFilter(
            f"unknown operator {op!r} for {key!r}; use one of {' '.join(OPERATORS)}"
        )
    if type(value).__module__ == "numpy":
        value = value.item()  # type: ignore[attr-defined]
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise InvalidFilter(
            f"filter value for {key!r} must be a number, string, boolean or null, "
            f"not {type(value).__name__}"
        )
    if isinstance(value, float) and value != value:
        raise InvalidFilter(f"filter value for {key!r} is NaN, which matches nothing")
    if isinstance(value, str) and not is_text(value):
        raise InvalidFilter(f"filter value for {key!r} is not valid UTF-8 text")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        value = float(value)  # beyond SQLite's integers; JSON numbers compare as reals there
    if value is None and op not in ("=", "==", "!="):
        raise InvalidFilter(f"null can only be compared with = or != (parameter {key!r})")
    return Condition(key, str(op), value)

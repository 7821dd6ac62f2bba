"""Selecting runs: one filter type shared by the Python API, ``runs``, ``pack`` and ``compare``.

A filter is the seed columns (experiment, backend, time) and conditions on the JSON columns:
``params`` by key or dotted path into nested params (``theta.value``: a key that is itself
``"theta.value"`` wins, run by run), ``metadata`` by dotted path (``validation.purity``,
``state.dims``, ``backend.qiskit.num_qubits``; the shortcuts of :data:`METADATA_ALIASES` on
the command line and in Python alike). Conditions are AND-ed; :class:`AnyOf` groups OR them.
Every condition becomes ``json_extract`` SQL, so a filter costs what the hand-written query
costs; keys reach SQL only as quoted JSON-path labels, bound as arguments (or, in ORDER BY,
as escaped string literals).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._jsonvalues import dumps, is_text, parse_loose
from .._timeutil import to_timestamp
from ..errors import InvalidFilter

OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "in": "IN",
}
_CONDITION = re.compile(
    r"^(?P<key>[^=<>!]+?)\s*(?P<op>>=|<=|!=|==|=|<|>|\s+in\s+)\s*(?P<value>.*)$", re.S
)
OR_SEPARATOR = " | "  # between alternatives in one command-line condition
# Shortcuts for -w and meta=: what a physicist types for what validation stores.
METADATA_ALIASES = {
    "purity": "validation.purity",
    "entropy": "validation.von_neumann_entropy_bits",
    "trace": "validation.trace",
    "is_valid": "validation.is_valid",
    "dims": "state.dims",
}
SORT_KEYS = {
    "time": "timestamp",
    "experiment": "experiment_name",
    "backend": "backend_name",
}
_MAX_SQL_INTEGER = 2**63

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Condition:
    """``key op value`` on ``params`` (by key) or ``metadata`` (by dotted path). ``value`` is
    a scalar, a tuple of scalars for ``in``, or JSON text of a list/object (``=``/``!=``)."""

    key: str
    op: str
    value: Any
    column: str = "params"

    def path(self) -> str:
        """The JSON path of the key as written: a param's whole key, a metadata dotted path."""
        return json_path([self.key] if self.column == "params" else self.key.split("."))

    def nested_path(self) -> str | None:
        """For a param key with dots (``theta.value``), the path into nested params it also
        names (``$."theta"."value"``), asked of the runs that lack the key as written."""
        if self.column != "params" or "." not in self.key:
            return None
        parts = self.key.split(".")
        return json_path(parts) if all(parts) else None


def json_path(parts: Sequence[str]) -> str:
    """``$."a"."b"``: every part a quoted label (parts never hold ``"``: refused earlier)."""
    return "$" + "".join('."' + part + '"' for part in parts)


def path_sql(condition: Condition, column: str) -> tuple[str, list[str]]:
    """The SQL (with ``?`` arguments) of the path ``condition`` reads in ``column`` (its SQL
    text): its key as written, or for a dotted param key that a run lacks, the nested path."""
    nested = condition.nested_path()
    if nested is None:
        return "?", [condition.path()]
    literal = condition.path()
    return f"(CASE WHEN json_type({column}, ?) IS NULL THEN ? ELSE ? END)", [
        literal,
        nested,
        literal,
    ]


@dataclass(frozen=True)
class AnyOf:
    """At least one of ``options`` holds (each a condition, or a tuple of them all holding)."""

    options: tuple[Condition | tuple[Condition, ...], ...]


Clause = Condition | AnyOf


@dataclass(frozen=True)
class RunFilter:
    """Which runs to select. Every given criterion must hold."""

    experiment: str | None = None
    backend: str | None = None
    since: float | None = None
    until: float | None = None
    conditions: tuple[Clause, ...] = field(default_factory=tuple)
    valid: bool | None = None
    tags: tuple[tuple[str, str | None], ...] = ()  # (key, value); value None: has the tag

    @classmethod
    def build(
        cls,
        *,
        experiment: str | None = None,
        backend: str | None = None,
        since: object = None,
        until: object = None,
        where: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        meta: Mapping[str, Any] | None = None,
        valid: bool | None = None,
        tags: Mapping[str, str | None] | None = None,
    ) -> RunFilter:
        """Check user-facing arguments. ``where`` maps a parameter name to a value (equality)
        or to ``{operator: value}`` with operators ``= != < <= > >= in``, e.g.
        ``{"shots": {"in": [1024, 2048]}, "theta": {">=": 0.1, "<": 0.5}}``, a dotted name
        reaching into nested params (``{"theta.value": {">": 0.1}}``) unless a run has that
        very key; a list of such dicts selects runs matching any of them. ``meta`` does the
        same on the metadata by dotted path (``{"validation.purity": {">=": 0.9}}``, or the
        shortcuts of ``-w``: ``{"purity": {">=": 0.9}}``); ``valid`` selects physical (or,
        with ``False``, flagged) states."""
        for name, text in (("experiment", experiment), ("backend", backend)):
            if text is not None and not isinstance(text, str):
                raise InvalidFilter(f"{name} must be a string, not {type(text).__name__}")
            if text is not None and not is_text(text):
                raise InvalidFilter(f"{name} {text!r} is not valid UTF-8 text")
        if valid is not None and not isinstance(valid, bool):
            raise InvalidFilter(f"valid must be True, False or None, not {valid!r}")
        clauses: list[Clause] = []
        if isinstance(where, (list, tuple)):
            groups = tuple(tuple(_conditions(group, "params")) for group in where)
            if not groups:
                raise InvalidFilter("where is an empty list; give at least one dict of conditions")
            clauses.append(AnyOf(groups))
        else:
            clauses.extend(_conditions(where or {}, "params"))
        clauses.extend(_conditions(meta or {}, "metadata"))
        return cls(
            experiment=experiment,
            backend=backend,
            since=None if since is None else to_timestamp(since, "since"),
            until=None if until is None else to_timestamp(until, "until"),
            conditions=tuple(clauses),
            valid=valid,
            tags=_tags(tags),
        )

    def base(self) -> RunFilter:
        """The same selection without conditions on the JSON columns."""
        return RunFilter(self.experiment, self.backend, self.since, self.until)

    def keys(self, column: str) -> list[str]:
        """The keys (or paths) this filter's conditions name in ``column``."""
        found: list[str] = []
        for clause in self.conditions:
            for condition in _flatten(clause):
                if condition.column == column and condition.key not in found:
                    found.append(condition.key)
        return found

    def sql(
        self,
        *,
        damaged_json: bool = False,
        rare_tags: Collection[tuple[str, str | None]] = (),
    ) -> tuple[str, list[Any]]:
        """A WHERE clause (possibly empty) and its arguments. With ``damaged_json``, rows whose
        params or metadata are not valid JSON (written by other tools) match no condition on
        them instead of making SQLite fail; it costs a second parse per row, so it is the
        fallback. The tag conditions in ``rare_tags`` (see :func:`.annotation_tables.rare_tags`) are
        read from the tags index instead of being asked of each run."""
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("experiment_name", self.experiment),
            ("backend_name", self.backend),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.since is not None:
            clauses.append("timestamp >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("timestamp <= ?")
            args.append(self.until)
        conditions = list(self.conditions)
        if self.valid is not None:
            conditions.append(Condition("validation.is_valid", "=", self.valid, "metadata"))
        for clause in conditions:
            text, more = _clause_sql(clause, damaged_json)
            clauses.append(text)
            args.extend(more)
        for key, value in self.tags:
            from .annotation_tables import HAS_TAG, HAS_TAG_VALUE, TAGGED, TAGGED_VALUE

            if (key, value) in rare_tags:
                clauses.append(TAGGED if value is None else TAGGED_VALUE)
            else:
                clauses.append(HAS_TAG if value is None else HAS_TAG_VALUE)
            args.extend([key] if value is None else [key, value])
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def order_by(sort: str | None, reverse: bool, *, damaged_json: bool = False) -> str:
    """ORDER BY for ``sort`` (``time``, ``experiment``, ``backend``, ``purity``, ``entropy``,
    a parameter name or dotted path, or ``params.KEY``/``metadata.PATH``): ascending, newest
    first when ``sort`` is None; ``reverse`` turns it round. Runs without the key come last."""
    if sort is None:
        direction = "ASC" if reverse else "DESC"
        return f" ORDER BY timestamp {direction}, run_id {direction}"
    direction = "DESC" if reverse else "ASC"
    if (
        not isinstance(sort, str)
        or not sort.strip()
        or not is_text(sort)
        or '"' in sort
        or "\x00" in sort
    ):
        raise InvalidFilter(f"cannot sort by {sort!r}; give time, experiment, a param or purity")
    if sort in SORT_KEYS:
        expression = SORT_KEYS[sort]
    else:
        condition = _sort_condition(sort)
        column = _column(condition.column, damaged_json)
        template, path_args = path_sql(condition, column)
        # ORDER BY takes no arguments here: each ? becomes its value as an escaped literal
        pieces = template.split("?")
        path = pieces[0] + "".join(
            _sql_text(value) + piece for value, piece in zip(path_args, pieces[1:], strict=True)
        )
        expression = f"json_extract({column}, {path})"
    return f" ORDER BY {expression} IS NULL, {expression} {direction}, timestamp DESC, run_id DESC"


def parse_tag(text: str) -> tuple[str, str | None]:
    """``key=value`` (that tag with that value) or ``key`` (any value), as after ``--tag``."""
    key, sep, value = text.partition("=")
    return key.strip(), (value if sep else None)


def _tags(tags: Mapping[str, str | None] | None) -> tuple[tuple[str, str | None], ...]:
    if tags is None:
        return ()
    if not isinstance(tags, Mapping):
        raise InvalidFilter(f"tags must be a dict of tag: value (or None), not {tags!r}")
    out = []
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not is_text(key):
            raise InvalidFilter(f"tag {key!r} cannot be filtered on")
        if value is not None and (not isinstance(value, str) or not is_text(value)):
            raise InvalidFilter(f"the value for tag {key!r} must be text or None (any value)")
        out.append((key, value))
    return tuple(out)


def _sort_condition(sort: str) -> Condition:
    if sort.startswith("params."):
        return Condition(sort.removeprefix("params."), "=", None, "params")
    if sort.startswith("metadata."):
        return Condition(sort.removeprefix("metadata."), "=", None, "metadata")
    if sort in METADATA_ALIASES:
        return Condition(METADATA_ALIASES[sort], "=", None, "metadata")
    return Condition(sort, "=", None, "params")


def _sql_text(text: str) -> str:
    """An SQL string literal of ``text`` (no NUL: sort keys holding one are refused)."""
    return "'" + text.replace("'", "''") + "'"


def _column(column: str, damaged_json: bool) -> str:
    return f"(CASE WHEN json_valid({column}) THEN {column} END)" if damaged_json else column


def _clause_sql(
    clause: Clause | tuple[Condition, ...], damaged_json: bool
) -> tuple[str, list[Any]]:
    if isinstance(clause, Condition):
        return _condition_sql(clause, damaged_json)
    parts: list[str] = []
    args: list[Any] = []
    items = clause.options if isinstance(clause, AnyOf) else clause
    joiner = " OR " if isinstance(clause, AnyOf) else " AND "
    for item in items:
        text, more = _clause_sql(item, damaged_json)
        parts.append(text)
        args.extend(more)
    return "(" + joiner.join(parts) + ")", args


def _condition_sql(condition: Condition, damaged_json: bool) -> tuple[str, list[Any]]:
    column = _column(condition.column, damaged_json)
    path, path_args = path_sql(condition, column)
    if condition.value is None:
        negate = "NOT " if condition.op == "!=" else ""
        return f"json_type({column}, {path}) IS {negate}'null'", path_args
    if condition.op == "in":
        marks = ",".join("?" * len(condition.value))
        return f"json_extract({column}, {path}) IN ({marks})", [*path_args, *condition.value]
    if isinstance(condition.value, JSONText):
        # json_extract gives a list or object as compact JSON text: compare the text
        return (
            f"json_type({column}, {path}) IN ('array', 'object') AND "
            f"json_extract({column}, {path}) {OPERATORS[condition.op]} ?",
            [*path_args, *path_args, str(condition.value)],
        )
    return (
        f"json_extract({column}, {path}) {OPERATORS[condition.op]} ?",
        [*path_args, condition.value],
    )


class JSONText(str):
    """A list or object value, as the compact JSON text SQLite's json_extract returns."""


def parse_condition(text: str, column: str = "params") -> Clause:
    """``shots=1024``, ``theta>=0.1``, ``name!=ghz``, ``shots in [1024, 2048]``, and
    alternatives ``theta<0.1 | theta>3`` as typed after ``--param`` (or ``--where``, with
    ``column="metadata"``: dotted paths and the shortcuts purity, entropy, trace, dims)."""
    if OR_SEPARATOR in text:
        return AnyOf(tuple(_one_condition(part, column) for part in text.split(OR_SEPARATOR)))
    return _one_condition(text, column)


def _one_condition(text: str, column: str) -> Condition:
    match = _CONDITION.match(text.strip())
    if not match:
        raise InvalidFilter(
            f"filter {text!r} is not KEY=VALUE "
            "(or KEY>=VALUE, KEY<VALUE, KEY!=VALUE, KEY in [A, B], ...)"
        )
    key, op = match.group("key").strip(), match.group("op").strip()
    return _condition(key, op, parse_loose(match.group("value")), column)


def _conditions(where: object, column: str) -> list[Condition]:
    if not isinstance(where, Mapping):
        raise InvalidFilter(
            f"conditions must be a dict of {column} conditions, not {type(where).__name__}"
        )
    out: list[Condition] = []
    for key, spec in where.items():
        if isinstance(spec, Mapping):
            if not spec:
                raise InvalidFilter(f"[{key!r}] is an empty dict; give {{operator: value}}")
            out.extend(_condition(key, op, value, column) for op, value in spec.items())
        else:
            out.append(_condition(key, "=", spec, column))
    return out


def _condition(key: object, op: object, value: object, column: str = "params") -> Condition:
    if not isinstance(key, str) or not key or '"' in key or not is_text(key):
        raise InvalidFilter(
            f"name {key!r} cannot be filtered on (empty, not UTF-8 text, or contains '\"')"
        )
    if column == "metadata":
        key = METADATA_ALIASES.get(key, key)  # the same shortcuts for -w and meta=
    if column == "metadata" and any(not part for part in key.split(".")):
        raise InvalidFilter(f"metadata path {key!r} has an empty part; write a.b.c")
    if op not in OPERATORS:
        known = " ".join(OPERATORS)
        raise InvalidFilter(f"unknown operator {op!r} for {key!r}; use one of {known}")
    if op == "in":
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise InvalidFilter(f"'in' for {key!r} needs a non-empty list, e.g. [1024, 2048]")
        values = tuple(_scalar(key, item) for item in value)
        if any(item is None for item in values):
            raise InvalidFilter(f"'in' for {key!r} cannot hold null; use {key}=null")
        return Condition(key, "in", values, column)
    if isinstance(value, (list, dict)):
        if op not in ("=", "==", "!="):
            raise InvalidFilter(f"a list or object can only be compared with = or != ({key!r})")
        return Condition(key, str(op), JSONText(dumps(value)), column)
    value = _scalar(key, value)
    if value is None and op not in ("=", "==", "!="):
        raise InvalidFilter(f"null can only be compared with = or != ({key!r})")
    return Condition(key, str(op), value, column)


def _scalar(key: str, value: object) -> Scalar:
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
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_SQL_INTEGER:
        value = float(value)  # beyond SQLite's integers; JSON numbers compare as reals there
    return value


def _flatten(clause: Clause | tuple[Condition, ...]) -> list[Condition]:
    if isinstance(clause, Condition):
        return [clause]
    items = clause.options if isinstance(clause, AnyOf) else clause
    return [condition for item in items for condition in _flatten(item)]


def filter_from_texts(
    experiment: str | None = None,
    backend: str | None = None,
    since: str | None = None,
    until: str | None = None,
    params: Iterable[str] = (),
    wheres: Iterable[str] = (),
    valid: bool | None = None,
    tag_filters: Iterable[str] = (),
) -> RunFilter:
    """The filter of the texts a person types: the CLI's ``-e -b --since --until -p -w -t
    --valid`` and the query parameters of ``serve`` (``e b since until p w t valid``) both
    come here, so a filter means the same thing typed anywhere."""
    base = RunFilter.build(
        experiment=experiment,
        backend=backend,
        since=since,
        until=until,
        tags=dict(parse_tag(text) for text in tag_filters),
    )
    conditions = tuple(parse_condition(text) for text in params)
    conditions += tuple(parse_condition(text, "metadata") for text in wheres)
    return RunFilter(
        base.experiment, base.backend, base.since, base.until, conditions, valid, base.tags
    )

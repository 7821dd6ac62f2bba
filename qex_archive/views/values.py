"""How a run's values read in every view, HTML and text alike: a number or ``?``, the validity
verdict, the params (or one mark when the stored params are damaged) and the tags.

One of each, so that the Bloch page, the report, the notebook views, the terminal and
``compare`` say the same thing the same way. These return plain text: HTML views escape it
with :func:`.html.esc`, terminal views pass it through :func:`.terminal.visible`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .._jsonvalues import dumps
from ..errors import ArchiveError

if TYPE_CHECKING:
    from ..run import Run

# What a run whose stored params are not a JSON object shows instead of them (a row written
# badly by another tool: it is still listed, and 'check' says which and why).
DAMAGED = "(damaged: not a JSON object; see 'qex-archive check')"


SHORT = ".6g"  # numbers in tables, as the runs table and the report show them


def number(value: object, spec: str = ".4f") -> str:
    """``value`` formatted by ``spec``, or ``?`` when it is not a number (not recorded, or
    recorded by a tool that wrote something else). Never a negative zero: a value that rounds
    to zero (an entropy of ``-1e-17``) reads ``0.0000``, not ``-0.0000``."""
    if not isinstance(value, (int, float)):
        return "?"
    return _unsigned_zero(value, format(value, spec))


def short_value(value: Any) -> str:
    """A param value as tables show it: numbers to 6 significant digits (``1.309`` for
    ``1.3089969389957472``, never ``-0``), anything else as JSON."""
    if isinstance(value, float):
        return number(value, SHORT)
    if isinstance(value, list):
        return "[" + ",".join(short_value(item) for item in value) + "]"
    return dumps(value)


def verdict(is_valid: object, yes: str = "yes", no: str = "NO") -> str:
    """``yes`` for a state validated as physical, ``no`` for one that is not, and ``?`` when
    no verdict was recorded: an unknown is never shown as either."""
    return "?" if is_valid is None else yes if is_valid else no


def run_params(run: Run) -> dict[str, Any] | None:
    """The params of ``run``, or None when the stored column is damaged (not a JSON object):
    a view shows what it can of a damaged run rather than failing."""
    try:
        return run.params
    except ArchiveError:
        return None


def run_validation(run: Run) -> dict[str, Any]:
    """The validation summary of ``run``; empty when none was recorded or the stored metadata
    is damaged (then every value reads ``?``)."""
    try:
        return run.validation
    except ArchiveError:
        return {}


def format_params(params: dict[str, Any], *, short: bool = False) -> str:
    """``key=value`` pairs; with ``short``, numbers to 6 significant digits (for tables)."""
    show = short_value if short else dumps
    return " ".join(f"{key}={show(value)}" for key, value in params.items())


def params_text(run: Run, *, short: bool = False, empty: str = "") -> str:
    """The params of ``run`` as :func:`format_params` writes them, ``empty`` when it has
    none, and :data:`DAMAGED` when they cannot be read."""
    params = run_params(run)
    if params is None:
        return DAMAGED
    return format_params(params, short=short) or empty


def format_tags(tags: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" if value else key for key, value in tags.items())


def _unsigned_zero(value: float, text: str) -> str:
    """``text`` without its minus sign when the digits it shows are all zero."""
    if text.startswith("-") and math.isfinite(value):
        mantissa = text[1:].lower().partition("e")[0]
        if not any(digit in mantissa for digit in "123456789"):
            return text[1:]
    return text

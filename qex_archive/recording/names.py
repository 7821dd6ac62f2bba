"""Experiment and backend names: the rules for text that ends up in tables and terminals."""

from __future__ import annotations

from .._jsonvalues import is_text
from ..errors import InvalidInput

MAX_NAME_LENGTH = 256


def check_name(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} is empty; give a name")
    if value != value.strip():
        raise InvalidInput(f"{what} {value!r} has leading or trailing whitespace")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    if not is_text(value):
        raise InvalidInput(f"{what} {value!r} is not valid UTF-8 text")
    return value

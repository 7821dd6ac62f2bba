"""A JSON Schema turned into a plain Python predicate, for validating thousands of records fast.

``jsonschema`` walks the schema anew for every value (about 0.1 ms per bundle run record);
the closures built here do the same checks directly. Only the keywords qex's own schemas use
are understood, with jsonschema's Draft 2020-12 meaning; a schema using anything else
compiles to ``None`` and callers use jsonschema. A ``False`` answer is always followed by
jsonschema, which finds the error to report, so the two can only differ in speed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sized
from typing import Any

Predicate = Callable[[Any], bool]

# Annotations only: they never make a value invalid ("format" is not asserted by default).
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "format", "examples"}
)
_TYPES: dict[str, Predicate] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


class _Unsupported(Exception):
    pass


def compile_schema(schema: Any) -> Predicate | None:
    """A predicate equal to ``jsonschema.Draft202012Validator(schema).is_valid``, or ``None``
    when the schema uses a keyword this module does not know."""
    definitions = schema.get("$defs", {}) if isinstance(schema, dict) else {}
    try:
        return _compile(schema, definitions, depth=0)
    except _Unsupported:
        return None


def _compile(schema: Any, definitions: dict[str, Any], depth: int) -> Predicate:
    if depth > 50:  # a $ref cycle: recursion is not in the subset
        raise _Unsupported
    if schema is True or schema == {}:
        return lambda value: True
    if schema is False:
        return lambda value: False
    if not isinstance(schema, dict):
        raise _Unsupported
    keywords = set(schema) - _ANNOTATIONS
    if schema.get("type") == "object" and keywords <= _RECORD_KEYWORDS:
        return _record(schema, definitions, depth)
    if schema.get("type") == "string" and keywords <= _TEXT_KEYWORDS:
        return _text(schema)
    checks: list[Predicate] = []
    for keyword, argument in schema.items():
        if keyword in _ANNOTATIONS:
            continue
        build = _KEYWORDS.get(keyword)
        if build is None:
            raise _Unsupported
        checks.append(build(argument, schema, definitions, depth))
    if len(checks) == 1:
        return checks[0]

    def every(value: Any) -> bool:
        for check in checks:
            if not check(value):
                return False
        return True

    return every


_RECORD_KEYWORDS = frozenset({"type", "properties", "required", "additionalProperties"})


def _record(schema: dict[str, Any], definitions: dict[str, Any], depth: int) -> Predicate:
    """An object with named properties, the commonest schema, checked in one pass."""
    required = tuple(schema.get("required", ()))
    if not all(isinstance(name, str) for name in required):
        raise _Unsupported
    members = _members(
        schema.get("properties", {}),
        schema.get("additionalProperties", True),
        definitions,
        depth,
    )

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for name in required:
            if name not in value:
                return False
        return members(value)

    return check


def _members(
    properties: Any, additional: Any, definitions: dict[str, Any], depth: int
) -> Callable[[dict[str, Any]], bool]:
    """Each member of an object against its property's schema, or else ``additional``."""
    if not isinstance(properties, dict):
        raise _Unsupported
    checks = {name: _compile(sub, definitions, depth + 1) for name, sub in properties.items()}
    extra = None if additional is False else _compile(additional, definitions, depth + 1)

    def check(value: dict[str, Any]) -> bool:
        for key, item in value.items():
            test = checks.get(key, extra)
            if test is None or not test(item):
                return False
        return True

    return check


_TEXT_KEYWORDS = frozenset({"type", "minLength", "maxLength", "pattern"})


def _text(schema: dict[str, Any]) -> Predicate:
    """A string with bounds and a pattern, checked in one call."""
    shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
    pattern = schema.get("pattern")
    for bound in (shortest, longest):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int)):
            raise _Unsupported
    if pattern is not None and not isinstance(pattern, str):
        raise _Unsupported
    search = re.compile(pattern).search if pattern is not None else None
    limit = longest if longest is not None else float("inf")

    def check(value: Any) -> bool:
        return (
            isinstance(value, str)
            and shortest <= len(value) <= limit
            and (search is None or search(value) is not None)
        )

    return check


def _ref(argument: Any, _: dict[str, Any], definitions: dict[str, Any], depth: int) -> Predicate:
    if not isinstance(argument, str) or not argument.startswith("#/$defs/"):
        raise _Unsupported
    target = definitions.get(argument.removeprefix("#/$defs/"))
    if target is None:
        raise _Unsupported
    return _compile(target, definitions, depth + 1)


def _type(argument: Any, *_: Any) -> Predicate:
    names = [argument] if isinstance(argument, str) else argument
    if not isinstance(names, list) or any(name not in _TYPES for name in names):
        raise _Unsupported
    tests = [_TYPES[name] for name in names]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _const(argument: Any, *_: Any) -> Predicate:
    if isinstance(argument, bool) or argument is None:
        return lambda value: value is argument
    if isinstance(argument, str):
        return lambda value: isinstance(value, str) and value == argument
    if isinstance(argument, (int, float)):
        return lambda value: (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value == argument
        )
    raise _Unsupported  # arrays and objects: jsonschema's equality rules are subtler


def _number_keyword(test: Callable[[float, Any], bool]) -> Callable[..., Predicate]:
    def build(argument: Any, *_: Any) -> Predicate:
        if isinstance(argument, bool) or not isinstance(argument, (int, float)):
            raise _Unsupported
        return lambda value: (
            isinstance(value, bool) or not isinstance(value, (int, float)) or test(value, argument)
        )

    return build


def _count_keyword(kind: type[Sized], test: Callable[[int, int], bool]) -> Callable[..., Predicate]:
    def build(argument: Any, *_: Any) -> Predicate:
        if isinstance(argument, bool) or not isinstance(argument, int):
            raise _Unsupported
        return lambda value: not isinstance(value, kind) or test(len(value), argument)

    return build


def _pattern(argument: Any, *_: Any) -> Predicate:
    if not isinstance(argument, str):
        raise _Unsupported
    search = re.compile(argument).search
    return lambda value: not isinstance(value, str) or search(value) is not None


def _required(argument: Any, *_: Any) -> Predicate:
    if not isinstance(argument, list):
        raise _Unsupported
    names = tuple(argument)

    def check(value: Any) -> bool:
        if isinstance(value, dict):
            for name in names:
                if name not in value:
                    return False
        return True

    return check


def _properties(
    argument: Any, schema: dict[str, Any], definitions: dict[str, Any], depth: int
) -> Predicate:
    if schema.get("patternProperties"):
        raise _Unsupported
    members = _members(argument, schema.get("additionalProperties", True), definitions, depth)
    return lambda value: not isinstance(value, dict) or members(value)


def _additional_properties(
    argument: Any, schema: dict[str, Any], definitions: dict[str, Any], depth: int
) -> Predicate:
    if "properties" in schema:  # applied by _properties, which knows the declared names
        return lambda value: True
    if schema.get("patternProperties"):
        raise _Unsupported
    test = _compile(argument, definitions, depth + 1)
    return lambda value: not isinstance(value, dict) or all(test(v) for v in value.values())


def _property_names(
    argument: Any, _: dict[str, Any], definitions: dict[str, Any], depth: int
) -> Predicate:
    test = _compile(argument, definitions, depth + 1)
    return lambda value: not isinstance(value, dict) or all(test(key) for key in value)


def _items(
    argument: Any, schema: dict[str, Any], definitions: dict[str, Any], depth: int
) -> Predicate:
    if "prefixItems" in schema:
        raise _Unsupported
    test = _compile(argument, definitions, depth + 1)

    def check(value: Any) -> bool:
        if isinstance(value, list):
            for item in value:
                if not test(item):
                    return False
        return True

    return check


_KEYWORDS: dict[str, Callable[[Any, dict[str, Any], dict[str, Any], int], Predicate]] = {
    "$ref": _ref,
    "type": _type,
    "const": _const,
    "pattern": _pattern,
    "maxLength": _count_keyword(str, lambda length, n: length <= n),
    "minLength": _count_keyword(str, lambda length, n: length >= n),
    "maximum": _number_keyword(lambda x, limit: x <= limit),
    "minimum": _number_keyword(lambda x, limit: x >= limit),
    "maxItems": _count_keyword(list, lambda count, n: count <= n),
    "minItems": _count_keyword(list, lambda count, n: count >= n),
    "maxProperties": _count_keyword(dict, lambda count, n: count <= n),
    "minProperties": _count_keyword(dict, lambda count, n: count >= n),
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional_properties,
    "propertyNames": _property_names,
    "items": _items,
}

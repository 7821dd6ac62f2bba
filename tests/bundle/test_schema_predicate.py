"""The fast schema check (fastjsonschema) agrees with jsonschema, which explains refusals, on
every value, valid or not."""

from __future__ import annotations

import copy
import json
import sys
import zipfile
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qex_archive as qa
from qex_archive.bundle import pack_bundle, schema_checks
from qex_archive.bundle.format import _predicate, _validator, schema_path
from qex_archive.bundle.schema_checks import PARTS, compiled

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, 1, 1.0, 2.0, -1, 1048576, 1048577, True, False])
    | st.text(max_size=80)
    | st.sampled_from(["qex-bundle", "complex128", "data/results/x_rho.npy", "a" * 64, "0" * 64])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def bundle_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    return schema


@pytest.fixture(scope="module")
def description(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("predicate")
    with qa.open_archive(root / "a") as arch:
        arch.record("e", params={"i": 0}, backend="b", state=np.eye(2) / 2)
        arch.record("f", params={"i": 1}, backend="c", state=np.eye(4) / 4, renderers=[])
        pack_bundle(arch, root / "b.qexb", note="two runs")
    with zipfile.ZipFile(root / "b.qexb") as bundle:
        value: dict[str, Any] = json.loads(bundle.read("data/qex-bundle.json"))
    return value


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths_of(item, (*prefix, index))
    return found


def test_the_bundle_schema_compiles_and_accepts_a_real_description(
    description: dict[str, Any],
) -> None:
    assert _predicate(None)(description) and _predicate("run")(description["runs"][0])
    assert jsonschema.Draft202012Validator(bundle_schema()).is_valid(description)


@settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_agrees_with_jsonschema_on_edited_descriptions(
    description: dict[str, Any], data: st.DataObject
) -> None:
    schema = bundle_schema()
    predicate = _predicate(None)
    validator = jsonschema.Draft202012Validator(schema)
    value = edited(description, data)
    assert predicate(value) == validator.is_valid(value), value


def edited(value: Any, data: st.DataObject) -> Any:
    """A copy of ``value`` with one to three parts replaced, deleted or added."""
    value = copy.deepcopy(value)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(paths_of(value)))
        if not path:
            value = data.draw(json_values)
            continue
        parent = value
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = data.draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12))] = data.draw(json_values)
        else:
            parent.append(data.draw(json_values))
    return value


def test_the_checks_compiled_ahead_are_made_from_this_schema() -> None:
    for part in PARTS:
        assert compiled(part) is not None, (
            f"schema_checks/{part}.py was made from another bundle.schema.json; "
            "regenerate it: python -m qex_archive.bundle.schema_checks"
        )


def test_a_check_compiled_from_another_schema_is_not_used(
    monkeypatch: pytest.MonkeyPatch, description: dict[str, Any]
) -> None:
    monkeypatch.setattr(schema_checks, "schema_sha256", lambda: "0" * 64)
    assert compiled("run") is None
    _predicate.cache_clear()
    try:
        assert _predicate("run")(description["runs"][0])  # compiled now, from the schema
        assert not _predicate("run")({**description["runs"][0], "run_id": 7})
    finally:
        _predicate.cache_clear()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), part=st.sampled_from(PARTS))
def test_the_checks_compiled_ahead_agree_with_jsonschema(
    description: dict[str, Any], data: st.DataObject, part: str
) -> None:
    if part == "run":
        original: Any = description["runs"][0]
    else:
        original = {key: value for key, value in description.items() if key != "runs"}
    value = edited(original, data)
    assert compiled(part) is not None
    assert _predicate(part)(value) == _validator(part).is_valid(value), value


def test_a_check_the_installed_fastjsonschema_cannot_import_is_not_used(
    monkeypatch: pytest.MonkeyPatch, description: dict[str, Any]
) -> None:
    """An older fastjsonschema lacks names the generated modules import."""
    monkeypatch.setitem(sys.modules, "qex_archive.bundle.schema_checks.run", None)
    assert compiled("run") is None
    _predicate.cache_clear()
    try:
        assert _predicate("run")(description["runs"][0])
    finally:
        _predicate.cache_clear()

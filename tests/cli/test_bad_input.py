"""Every bad argument is refused with a clear error and leaves the archive exactly as it was."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import qex_archive as qa

from ..conftest import bell_state, snapshot


def deep(n: int) -> Any:
    value: Any = 0
    for _ in range(n):
        value = [value]
    return value


GOOD: dict[str, Any] = {
    "experiment": "ghz",
    "params": {"shots": 1024},
    "backend": "aer_simulator",
    "state": bell_state(),
}

BAD_RECORDS = [
    # experiment name
    ({"experiment": ""}, qa.InvalidInput, "experiment name is empty"),
    ({"experiment": "   "}, qa.InvalidInput, "experiment name is empty"),
    ({"experiment": None}, qa.InvalidInput, "experiment name must be text"),
    ({"experiment": 42}, qa.InvalidInput, "experiment name must be text, not int"),
    ({"experiment": " ghz"}, qa.InvalidInput, "leading or trailing whitespace"),
    ({"experiment": "a\nb"}, qa.InvalidInput, "control characters"),
    ({"experiment": "x" * 300}, qa.InvalidInput, "limit is 256"),
    ({"experiment": "bad\udcff"}, qa.InvalidInput, "not valid UTF-8"),
    # backend name
    ({"backend": ""}, qa.InvalidInput, "backend is empty"),
    ({"backend": None}, qa.InvalidInput, "backend must be text, not NoneType"),
    ({"backend": " aer"}, qa.InvalidInput, "leading or trailing whitespace"),
    # params
    ({"params": [("shots", 1)]}, qa.InvalidJSON, "params must be a dict, not list"),
    ({"params": "shots=1"}, qa.InvalidJSON, "params must be a dict, not str"),
    ({"params": {1: "x"}}, qa.InvalidJSON, "key 1 of type int; keys must be strings"),
    ({"params": {"theta": float("nan")}}, qa.InvalidJSON, r"params\['theta'\] is nan"),
    ({"params": {"theta": float("inf")}}, qa.InvalidJSON, r"params\['theta'\] is inf"),
    ({"params": {"theta": np.float64("nan")}}, qa.InvalidJSON, "nan"),
    ({"params": {"v": [1, float("-inf")]}}, qa.InvalidJSON, r"params\['v'\]\[1\] is -inf"),
    ({"params": {"z": 1 + 2j}}, qa.InvalidJSON, "complex number"),
    ({"params": {"z": np.complex128(1j)}}, qa.InvalidJSON, "complex number"),
    ({"params": {"f": open}}, qa.InvalidJSON, "not JSON"),
    ({"params": {"s": {1, 2}}}, qa.InvalidJSON, "set, which is not JSON"),
    ({"params": {"b": b"bytes"}}, qa.InvalidJSON, "bytes, which is not JSON"),
    ({"params": {"d": deep(100)}}, qa.InvalidJSON, "nested deeper than 64"),
    ({"params": {"k\udcff": 1}}, qa.InvalidJSON, "lone surrogate"),
    # metadata
    ({"metadata": 5}, qa.InvalidJSON, "metadata must be a dict"),
    ({"metadata": {"x": float("nan")}}, qa.InvalidJSON, r"metadata\['x'\] is nan"),
    ({"metadata": {"state": {}}}, qa.InvalidInput, "'state' is reserved"),
    ({"metadata": {"validation": 1}}, qa.InvalidInput, "'validation' is reserved"),
    # timestamp
    ({"timestamp": float("nan")}, qa.InvalidInput, "finite Unix timestamp"),
    ({"timestamp": True}, qa.InvalidInput, "not a boolean"),
    ({"timestamp": "yesterday-ish"}, qa.InvalidInput, "is not a time"),
    ({"timestamp": [1]}, qa.InvalidInput, "must be a time, not list"),
    # state
    ({"state": None}, qa.InvalidState, "no installed plugin can convert a NoneType"),
    ({"state": "rho"}, qa.InvalidState, "no installed plugin can convert a str"),
    ({"state": {"rho": 1}}, qa.InvalidState, "no installed plugin can convert a dict"),
    ({"state": [["a", "b"], ["c", "d"]]}, qa.InvalidState, "dtype <U1"),
    ({"state": [[None, 1], [1, 0]]}, qa.InvalidState, "dtype object"),
    ({"state": [[1, 0], [0]]}, qa.InvalidState, "not a numeric array"),
    ({"state": np.zeros((2, 3))}, qa.InvalidState, r"shape \(2, 3\)"),
    ({"state": np.zeros((2, 2, 2))}, qa.InvalidState, r"shape \(2, 2, 2\)"),
    ({"state": np.zeros((0, 0))}, qa.InvalidState, "dimension 0"),
    ({"state": np.ones((1, 1))}, qa.InvalidState, "dimension 1"),
    ({"state": np.float64(0.5)}, qa.InvalidState, r"shape \(\)"),
    ({"state": 0.5}, qa.InvalidState, "no installed plugin can convert a float"),
    ({"state": np.eye(2, dtype=bool)}, qa.InvalidState, "dtype bool"),
    ({"state": np.array([[np.nan, 0], [0, 1]])}, qa.InvalidState, "NaN or infinite"),
    ({"state": np.array([[np.inf, 0], [0, 1]])}, qa.InvalidState, "NaN or infinite"),
    ({"state": np.eye(3) / 3}, qa.InvalidState, r"3x3 state is not a qubit register.*dims="),
    ({"state": np.eye(6) / 6, "dims": [2, 2]}, qa.InvalidState, r"multiply to 4.*dimension 6"),
    ({"state": np.eye(4) / 4, "dims": [4, 1]}, qa.InvalidState, "at least 2"),
    ({"state": np.eye(4) / 4, "dims": []}, qa.InvalidState, "dims is empty"),
    ({"state": np.eye(4) / 4, "dims": "22"}, qa.InvalidState, "list of integers"),
    ({"state": np.eye(4) / 4, "dims": [2.0, 2.0]}, qa.InvalidState, "integers of at least 2"),
    ({"state": np.eye(4) / 4, "dims": [True, 2]}, qa.InvalidState, "integers of at least 2"),
    ({"state": [[1.1, 0], [0, -0.1]], "strict": True}, qa.InvalidState, "not physical"),
    ({"renderers": ["nope"]}, qa.InvalidInput, "no renderer named 'nope'; available: bloch"),
    ({"renderers": "bloch"}, qa.InvalidInput, "list of names, not the text"),
]


@pytest.mark.parametrize(
    ("override", "error", "message"), BAD_RECORDS, ids=[m for _, _, m in BAD_RECORDS]
)
def test_bad_record_arguments(
    archive: qa.Archive, override: dict[str, Any], error: type[Exception], message: str
) -> None:
    archive.record(**GOOD)  # the archive already holds something that must survive
    before = snapshot(archive.root)
    arguments = {**GOOD, **override}
    experiment = arguments.pop("experiment")
    with pytest.raises(error, match=message) as caught:
        archive.record(experiment, **arguments)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, qa.QexError)
    assert snapshot(archive.root) == before


BAD_QUERIES = [
    ({"where": {"theta": {"~": 1}}}, "unknown operator"),
    ({"where": {"theta": {}}}, "empty dict"),
    ({"where": {"theta": {"<": [1, 2]}}}, "can only be compared with = or !="),
    ({"where": {"theta": {"in": [[1]]}}}, "number, string, boolean or null"),
    ({"where": {'a"b': 1}}, "cannot be filtered on"),
    ({"where": {"": 1}}, "cannot be filtered on"),
    ({"where": {"x": float("nan")}}, "NaN"),
    ({"where": {"x": {">": None}}}, "null can only be compared"),
    ({"where": [("x", 1)]}, "must be a dict"),
    ({"since": "next tuesday"}, "is not a time"),
    ({"until": object()}, "must be a time"),
    ({"experiment": 5}, "experiment must be a string"),
    ({"limit": -1}, "non-negative integer"),
    ({"limit": 2.5}, "non-negative integer"),
    ({"offset": -3}, "non-negative integer"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_QUERIES, ids=[m for _, m in BAD_QUERIES])
def test_bad_queries(archive: qa.Archive, arguments: dict[str, Any], message: str) -> None:
    archive.record(**GOOD)
    before = snapshot(archive.root)
    with pytest.raises(qa.InvalidInput, match=message):
        archive.runs(**arguments)
    assert snapshot(archive.root) == before


@pytest.mark.parametrize("ref", ["", "   ", None, 17])
def test_bad_run_references(archive: qa.Archive, ref: Any) -> None:
    with pytest.raises(qa.InvalidInput, match="run ID must be non-empty text"):
        archive.get(ref)


def test_unknown_run_is_a_clear_error(archive: qa.Archive) -> None:
    archive.record(**GOOD)
    before = snapshot(archive.root)
    with pytest.raises(qa.RunNotFound, match="no run with ID or prefix 'ffff'"):
        archive.delete("ffff")
    assert snapshot(archive.root) == before


def test_an_archive_path_that_is_a_file_is_refused(tmp_path: Any) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(qa.ArchiveError, match="is a file, not an archive directory"):
        qa.open_archive(target)
    assert target.read_text() == "x"

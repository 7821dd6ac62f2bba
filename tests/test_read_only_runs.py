"""A stored run's params and metadata are read-only: a change in memory would never be saved,
so it fails at once, and everything that reads them (JSON, equality, copies) still works."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest

import qex_archive as qa

from .conftest import bell_state

PARAMS = {"theta": {"value": 0.3, "unit": "rad"}, "angles": [0.1, [0.2]], "shots": 1024}


@pytest.fixture
def run(archive: qa.Archive) -> qa.Run:
    archive.record("e", params=PARAMS, backend="b", state=bell_state(), metadata={"fit": {}})
    (stored,) = archive.runs()
    return stored


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.metadata.__setitem__("fit", 42),
        lambda r: r.metadata["fit"].__setitem__("chi2", 1.0),
        lambda r: r.metadata.update(fit=1),
        lambda r: r.metadata.pop("fit"),
        lambda r: r.metadata.setdefault("x", 1),
        lambda r: r.params.__delitem__("shots"),
        lambda r: r.params["theta"].clear(),
        lambda r: r.params["angles"].append(0.4),
        lambda r: r.params["angles"][1].__setitem__(0, 9),
        lambda r: r.params["angles"].sort(),
    ],
)
def test_changing_stored_run_data_fails_at_once(run: qa.Run, change: object) -> None:
    with pytest.raises(TypeError, match=r"run data is read-only.*tags or notes.*new run"):
        change(run)  # type: ignore[operator]
    assert run.params == PARAMS and run.metadata is not None and run.metadata["fit"] == {}


def test_in_place_operators_fail_too(run: qa.Run) -> None:
    params = run.params
    with pytest.raises(TypeError, match="read-only"):
        params |= {"x": 1}
    angles = run.params["angles"]
    with pytest.raises(TypeError, match="read-only"):
        angles += [1]
    assert run.params == PARAMS


def test_read_only_data_reads_as_plain_json(run: qa.Run, archive: qa.Archive) -> None:
    from qex_archive._jsonvalues import frozen_json, plain_json

    assert isinstance(run.params, dict) and run.params == PARAMS
    assert json.loads(json.dumps(run.params)) == PARAMS
    assert json.loads(json.dumps(run.to_dict(), sort_keys=True))["params"] == PARAMS
    assert repr(run.params) == repr(dict(run.params))  # shown as a dict
    mine = copy.deepcopy(run.params)  # a copy of one's own to change
    mine["angles"].append(0.4)
    mine["theta"]["value"] = 0.5
    assert type(mine) is dict and run.params == PARAMS
    shallow = run.params.copy()
    shallow["shots"] = 1
    assert copy.copy(run.params) == PARAMS and type(copy.copy(run.params)) is dict
    assert pickle.loads(pickle.dumps(run.params)) == PARAMS
    assert plain_json(frozen_json(PARAMS)) == PARAMS
    # recording a new run from a stored run's data works as with a dict
    assert run.metadata is not None
    again = archive.record(
        "e", params=run.params, backend="b", state=run.rho, metadata={"fit": run.metadata["fit"]}
    )
    assert again.params == run.params


def test_plugins_see_the_run_being_recorded_read_only(archive: qa.Archive) -> None:
    from qex_archive._jsonvalues import FrozenDict

    seen: list[object] = []

    class Watcher:
        @qa.hookimpl  # type: ignore[misc]
        def qex_validate_run(self, run: qa.Run, rho: np.ndarray) -> None:
            seen.append(type(run.metadata))
            try:
                run.metadata["x"] = 1
            except TypeError as exc:
                seen.append(str(exc))

    archive.plugins.register(Watcher(), name="watcher")
    archive.record("e", backend="b", state=bell_state())
    assert seen[0] is FrozenDict and "read-only" in str(seen[1])

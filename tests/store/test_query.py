"""Finding runs: by ID prefix, experiment, backend, time and parameter values."""

from __future__ import annotations

import time

import numpy as np
import pytest

import qex_archive as qa
from qex_archive.store.query import Condition, parse_condition

from ..conftest import bell_state


@pytest.fixture
def filled(archive: qa.Archive) -> qa.Archive:
    with archive.batch():
        for i in range(12):
            archive.record(
                "sweep" if i % 2 else "ghz",
                params={
                    "i": i,
                    "theta": i / 10,
                    "label": f"L{i % 3}",
                    "flag": i % 4 == 0,
                    "opt": None if i == 5 else i,
                },
                backend="aer" if i < 6 else "hw",
                state=bell_state(),
                timestamp=1_700_000_000 + i * 100,
            )
    return archive


def ids(runs: list[qa.Run]) -> list[int]:
    return [run.params["i"] for run in runs]


def test_newest_first_by_default_and_oldest_first_on_request(filled: qa.Archive) -> None:
    assert ids(filled.runs()) == list(range(11, -1, -1))
    assert ids(filled.runs(newest_first=False)) == list(range(12))


def test_limit_and_offset(filled: qa.Archive) -> None:
    assert ids(filled.runs(limit=3)) == [11, 10, 9]
    assert ids(filled.runs(limit=3, offset=3)) == [8, 7, 6]
    assert ids(filled.runs(limit=0)) == []


def test_filters_combine(filled: qa.Archive) -> None:
    assert ids(filled.runs(experiment="ghz")) == [10, 8, 6, 4, 2, 0]
    assert ids(filled.runs(backend="hw", experiment="sweep")) == [11, 9, 7]
    assert ids(filled.runs(since=1_700_000_500, until=1_700_000_700)) == [7, 6, 5]
    assert filled.runs(experiment="nothing") == []


def test_parameter_equality_and_ranges(filled: qa.Archive) -> None:
    assert ids(filled.runs(where={"i": 3})) == [3]
    assert ids(filled.runs(where={"theta": {">=": 0.4, "<": 0.7}})) == [6, 5, 4]
    assert ids(filled.runs(where={"label": "L1"})) == [10, 7, 4, 1]
    assert ids(filled.runs(where={"label": {"!=": "L1"}, "i": {"<": 4}})) == [3, 2, 0]
    assert ids(filled.runs(where={"flag": True})) == [8, 4, 0]
    assert ids(filled.runs(where={"opt": None})) == [5]
    assert len(filled.runs(where={"opt": {"!=": None}})) == 11
    assert filled.runs(where={"missing": 1}) == []
    # a string never equals a number
    assert filled.runs(where={"i": "3"}) == []


def test_count_uses_the_same_filter(filled: qa.Archive) -> None:
    selection = qa.RunFilter.build(experiment="ghz", where={"i": {">": 4}})
    assert filled.count(selection) == 3 == len(filled.select(selection))
    assert filled.count() == 12


def test_relative_and_iso_times(archive: qa.Archive) -> None:
    now = time.time()
    archive.record("e", params={"i": 0}, backend="b", state=bell_state(), timestamp=now - 3 * 86400)
    archive.record("e", params={"i": 1}, backend="b", state=bell_state(), timestamp=now - 3600)
    assert ids(archive.runs(since="2d")) == [1]
    assert ids(archive.runs(until="1d")) == [0]
    assert len(archive.runs(since="1970-01-02")) == 2


def test_unique_prefixes_resolve_like_git(archive: qa.Archive) -> None:
    runs = [archive.record("e", backend="b", state=bell_state()) for _ in range(40)]
    target = runs[0]
    assert archive.get(target.run_id) == target
    assert archive.get(target.run_id.upper()) == target
    unique = next(
        n for n in range(1, 37) if sum(r.run_id.startswith(target.run_id[:n]) for r in runs) == 1
    )
    assert archive.get(target.run_id[:unique]) == target


def test_ambiguous_prefix_lists_candidates(archive: qa.Archive) -> None:
    run_ids = ["abcd0000-0000-4000-8000-000000000001", "abcd0000-0000-4000-8000-000000000002"]
    for run_id in run_ids:
        archive.conn.execute(
            "INSERT INTO runs VALUES (?, 'e', '{}', 'b', 0, 'results/x', NULL)", (run_id,)
        )
    with pytest.raises(
        qa.AmbiguousRunId, match=r"'abcd' matches several runs.*give more characters"
    ):
        archive.get("abcd")
    assert archive.get("abcd0000-0000-4000-8000-000000000002").run_id == run_ids[1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("shots=1024", Condition("shots", "=", 1024)),
        ("theta>=0.1", Condition("theta", ">=", 0.1)),
        ("theta < 2", Condition("theta", "<", 2)),
        ("name!=ghz", Condition("name", "!=", "ghz")),
        ('name="3"', Condition("name", "=", "3")),
        ("flag=true", Condition("flag", "=", True)),
        ("x=null", Condition("x", "=", None)),
        ("date>=2026-01-01", Condition("date", ">=", "2026-01-01")),
    ],
)
def test_command_line_conditions(text: str, expected: Condition) -> None:
    assert parse_condition(text) == expected


@pytest.mark.parametrize("text", ["shots", "=3", ">=1", "x>[1]", "x in 3", "x in []"])
def test_bad_command_line_conditions(text: str) -> None:
    with pytest.raises(qa.InvalidFilter):
        parse_condition(text)


def test_in_and_or(filled: qa.Archive) -> None:
    assert ids(filled.runs(where={"i": {"in": [1, 3, 99]}})) == [3, 1]
    assert ids(filled.runs(where=[{"i": {"<": 2}}, {"i": {">": 9}}])) == [11, 10, 1, 0]
    assert ids(filled.runs(where=[{"i": 2, "flag": False}, {"label": "L2"}])) == [11, 8, 5, 2]
    (either,) = [parse_condition("theta<0.15 | theta>0.95")]
    assert ids(filled.select(qa.RunFilter(conditions=(either,)))) == [11, 10, 1, 0]
    assert ids(filled.select(qa.RunFilter(conditions=(parse_condition("i in [4, 5]"),)))) == [5, 4]


def test_metadata_paths_validity_and_shortcuts(archive: qa.Archive) -> None:
    archive.record("a", backend="b", state=bell_state(), metadata={"setup": {"fridge": 2}})
    archive.record("b", backend="b", state=np.eye(2) / 2)
    archive.record("c", backend="b", state=np.array([[1.1, 0], [0, -0.1]]))
    names = lambda runs: sorted(r.experiment_name for r in runs)  # noqa: E731
    assert names(archive.runs(meta={"validation.purity": {">=": 0.9}})) == ["a", "c"]
    assert names(archive.runs(meta={"state.dims": [2, 2]})) == ["a"]
    assert names(archive.runs(meta={"setup.fridge": 2})) == ["a"]
    assert names(archive.runs(valid=True)) == ["a", "b"]
    assert names(archive.runs(valid=False)) == ["c"]
    purity = parse_condition("purity<0.9", "metadata")
    assert isinstance(purity, Condition) and purity.key == "validation.purity"
    assert names(archive.select(qa.RunFilter(conditions=(purity,)))) == ["b"]
    dims = parse_condition("dims=[2]", "metadata")
    assert names(archive.select(qa.RunFilter(conditions=(dims,)))) == ["b", "c"]


def test_sorting_by_time_keys_and_parameters(filled: qa.Archive) -> None:
    assert ids(filled.runs(sort="time")) == list(range(12))
    assert ids(filled.runs(sort="time", reverse=True)) == list(range(11, -1, -1))
    assert ids(filled.runs(sort="theta", reverse=True, limit=3)) == [11, 10, 9]
    by_label = filled.runs(sort="label")
    assert [r.params["label"] for r in by_label] == sorted(r.params["label"] for r in by_label)
    # runs without the key come last, whichever the direction
    assert (
        ids(filled.runs(sort="opt"))[-1] == 5
        and ids(filled.runs(sort="opt", reverse=True))[-1] == 5
    )
    assert ids(filled.runs(sort="experiment", limit=6)) == [10, 8, 6, 4, 2, 0]
    with pytest.raises(qa.InvalidFilter):
        filled.runs(sort='bad"key')


def test_a_misspelt_key_gets_a_hint(filled: qa.Archive) -> None:
    selection = qa.RunFilter.build(experiment="ghz", where={"thta": 1})
    assert filled.select(selection) == []
    (hint,) = filled.unknown_keys(selection)
    assert hint.startswith("no run has param 'thta'; keys seen: flag, i, label, opt, theta")
    assert filled.unknown_keys(qa.RunFilter.build(where={"theta": 99})) == []


@pytest.mark.parametrize("batch", [1, 2, 1000])
def test_runs_come_in_batches_and_a_row_of_broken_json_matches_no_condition(
    archive: qa.Archive, batch: int
) -> None:
    runs = [
        archive.record("e", params={"i": i}, backend="b", state=np.eye(2) / 2, timestamp=1e9 + i)
        for i in range(6)
    ]
    # another tool wrote a row whose params are not JSON: the fourth newest
    archive.conn.execute("UPDATE runs SET params = '{\"i\": ' WHERE run_id = ?", (runs[2].run_id,))
    archive.conn.commit()
    selection = qa.RunFilter.build(where={"i": {">=": 0}})
    batches = list(archive.iter_runs(selection, batch=batch))
    assert all(0 < len(b) <= batch for b in batches)
    expected = [r.run_id for r in reversed(runs) if r.run_id != runs[2].run_id]
    assert [r.run_id for b in batches for r in b] == expected
    assert [r.run_id for r in archive.runs(where={"i": {">=": 0}})] == expected
    assert [r.run_id for b in archive.iter_runs(qa.RunFilter(), batch=batch) for r in b] == [
        r.run_id for r in reversed(runs)
    ]
    with pytest.raises(qa.InvalidInput, match="limit"):
        archive.iter_runs(selection, limit=-1)  # refused at the call, not at the first batch

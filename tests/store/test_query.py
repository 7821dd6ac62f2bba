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


def test_meta_takes_the_shortcuts_of_where_on_the_command_line(archive: qa.Archive) -> None:
    archive.record("pure", backend="b", state=bell_state())
    archive.record("mixed", backend="b", state=np.eye(2) / 2)
    names = lambda runs: sorted(r.experiment_name for r in runs)  # noqa: E731
    for typed, meta in [
        ("purity>=0.9", {"purity": {">=": 0.9}}),
        ("entropy>0.5", {"entropy": {">": 0.5}}),
        ("trace=1.0", {"trace": 1.0}),
        ("is_valid=true", {"is_valid": True}),
        ("dims=[2,2]", {"dims": [2, 2]}),
    ]:
        on_the_command_line = archive.select(
            qa.RunFilter(conditions=(parse_condition(typed, "metadata"),))
        )
        assert names(archive.runs(meta=meta)) == names(on_the_command_line), typed
        assert on_the_command_line, typed
    assert names(archive.runs(meta={"purity": {">=": 0.9}})) == ["pure"]
    assert qa.RunFilter.build(meta={"purity": 1}) == qa.RunFilter.build(
        meta={"validation.purity": 1}
    )


def test_a_metadata_path_no_run_has_gets_a_hint_like_a_param(archive: qa.Archive) -> None:
    archive.record("a", backend="b", state=bell_state(), metadata={"setup": {"fridge": 2}})
    archive.record("b", backend="b", state=bell_state(), metadata={"setup": {"line": "x"}})
    selection = qa.RunFilter.build(meta={"setup.fridg": 2})
    assert archive.select(selection) == []
    assert archive.unknown_keys(selection) == [
        "no run has metadata 'setup.fridg'; paths seen: setup.fridge, setup.line"
    ]
    # a shortcut names the path it stands for; a path some run has gets no hint
    assert archive.unknown_keys(qa.RunFilter.build(meta={"setup.fridge": 9, "purity": 2})) == []
    (hint,) = archive.unknown_keys(qa.RunFilter.build(meta={"fridge": 2}))
    assert hint.startswith("no run has metadata 'fridge'; paths seen: ")
    assert "setup" in hint and "validation" in hint and "shortcuts purity" in hint
    # the hint looks only at the runs the rest of the selection keeps
    (hint,) = archive.unknown_keys(qa.RunFilter.build(experiment="b", meta={"setup.fridge": 2}))
    assert hint == "no run has metadata 'setup.fridge'; paths seen: setup.line"


HOSTILE_KEYS = ["it's", "a]b[0]", "$", "$.x", "') OR 1=1 --", "*", "θ"]


@pytest.fixture
def nested(archive: qa.Archive) -> qa.Archive:
    """Runs with nested params, one with a key that has a dot, one with hostile keys."""
    with archive.batch():
        for i, params in enumerate(
            [
                {"theta": {"value": 0.3, "unit": "rad"}},
                {"theta": {"value": 0.05, "unit": "rad"}},
                # the key as written wins over the nested path, run by run
                {"theta.value": 0.2, "theta": {"value": 0.01}},
                {"theta": 0.5},
                {"mw.freq": 5.1},
                {"weird": {key: n for n, key in enumerate(HOSTILE_KEYS)}},
            ]
        ):
            archive.record(
                f"r{i}", params=params, backend="b", state=bell_state(), timestamp=1e9 + i
            )
    return archive


def names(runs: list[qa.Run]) -> list[str]:
    return [run.experiment_name for run in runs]


def test_dotted_params_reach_into_nested_params(nested: qa.Archive) -> None:
    assert names(nested.runs(where={"theta.value": {">": 0.1}})) == ["r2", "r0"]
    assert names(nested.runs(where={"theta.value": 0.05})) == ["r1"]
    assert names(nested.runs(where={"theta.value": {"in": [0.01, 0.2, 0.3]}})) == ["r2", "r0"]
    assert names(nested.runs(where={"theta.unit": "rad", "theta.value": {"<": 0.1}})) == ["r1"]
    assert names(nested.runs(where=[{"theta.value": 0.3}, {"theta": 0.5}])) == ["r3", "r0"]
    assert names(nested.runs(where={"theta.value": {"!=": 0.3}})) == ["r2", "r1"]
    # typed after -p: the same conditions
    typed = parse_condition("theta.value>0.1")
    assert names(nested.select(qa.RunFilter(conditions=(typed,)))) == ["r2", "r0"]
    either = parse_condition("theta.value<0.1 | theta.unit!=rad")
    assert names(nested.select(qa.RunFilter(conditions=(either,)))) == ["r1"]
    # the key with a dot matches as before; a path through a number is no path
    assert names(nested.runs(where={"mw.freq": 5.1})) == ["r4"]
    assert names(nested.runs(where={"theta.value.x": {"!=": 1}})) == []
    assert nested.count(qa.RunFilter(conditions=(typed,))) == 2


def test_dotted_params_with_hostile_keys_are_only_data(nested: qa.Archive) -> None:
    for n, key in enumerate(HOSTILE_KEYS):
        if "." in key:  # a key with a dot below the top cannot be reached by a dotted path
            assert nested.runs(where={f"weird.{key}": n}) == []
            continue
        assert names(nested.runs(where={f"weird.{key}": n})) == ["r5"], key
        assert names(nested.runs(where={f"weird.{key}": n + 1})) == [], key
        assert names(nested.runs(sort=f"weird.{key}"))[0] == "r5", key
    # nothing typed reaches SQL as SQL: the archive is whole afterwards
    assert len(nested.runs(where={"weird.') OR 1=1 --": {">=": -1}})) == 1
    assert len(nested.runs(sort="x') , (SELECT 1")) == 6 == nested.count()


def test_sorting_by_a_dotted_param(nested: qa.Archive) -> None:
    # r2's own "theta.value" (0.2) counts, not its nested 0.01; runs without it come last
    assert names(nested.runs(sort="theta.value"))[:3] == ["r1", "r2", "r0"]
    assert names(nested.runs(sort="theta.value", reverse=True))[:3] == ["r0", "r2", "r1"]
    assert names(nested.runs(sort="params.theta.value"))[:3] == ["r1", "r2", "r0"]
    assert names(nested.runs(sort="mw.freq"))[0] == "r4"


def test_a_dotted_param_no_run_has_gets_a_hint(nested: qa.Archive) -> None:
    selection = qa.RunFilter.build(where={"theta.valu": {">": 0.1}})
    assert nested.select(selection) == []
    assert nested.unknown_keys(selection) == [
        "no run has param 'theta.valu'; keys seen: theta.unit, theta.value"
    ]
    assert nested.unknown_keys(qa.RunFilter.build(where={"theta.value": 9})) == []
    assert nested.unknown_keys(qa.RunFilter.build(where={"mw.freq": 9})) == []
    (hint,) = nested.unknown_keys(qa.RunFilter.build(where={"thet.value": 1}))
    assert hint == "no run has param 'thet.value'; keys seen: mw.freq, theta, theta.value, weird"

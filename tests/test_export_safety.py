"""Export of a stranger's runs: CSV cells a spreadsheet would run are made inert (OWASP), and
every param has a column of its own (keys with dots never collapse into a nested one's)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import qex_archive as qa
from qex_archive._columns import param_column
from qex_archive.export import export_runs

from .cli_tools import invoke

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


def test_csv_cells_that_would_be_formulas_start_with_a_quote(
    archive: qa.Archive, tmp_path: Path
) -> None:
    archive.capture = False
    run = archive.record(
        FORMULAS[0],
        params={"name": FORMULAS[1], "neg": -0.5, "text": FORMULAS[2], "n": -3, "ok": "fine"},
        backend=FORMULAS[3],
        state=np.eye(2) / 2,
        renderers=[],
    )
    run.set_tag("who", "=cmd")
    out = tmp_path / "x.csv"
    assert invoke(archive.root, "export", "-o", str(out)).exit_code == 0
    (row,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert row["experiment"] == "'" + FORMULAS[0]
    assert row["backend"] == "'" + FORMULAS[3]
    assert row["params.name"] == "'" + FORMULAS[1]
    assert row["params.text"] == "'-2+3"  # text, though it starts like a number
    assert row["params.neg"] == "-0.5" and row["params.n"] == "-3"  # numbers stay numbers
    assert row["params.ok"] == "fine" and row["tags.who"] == "'=cmd"
    for cell in row.values():
        assert not cell.startswith(("=", "+", "@")) and not (
            cell.startswith("-") and cell not in ("-0.5", "-3")
        )
    # JSON Lines keeps every text exactly
    lines = tmp_path / "x.jsonl"
    assert invoke(archive.root, "export", "-o", str(lines)).exit_code == 0
    record = json.loads(lines.read_text())
    assert record["experiment"] == FORMULAS[0] and record["params.name"] == FORMULAS[1]


def test_dotted_keys_and_nested_keys_keep_their_own_columns(
    archive: qa.Archive, tmp_path: Path
) -> None:
    archive.capture = False
    archive.record(
        "e",
        params={"mw.freq": 5.1, "mw": {"freq": 4.9}, "a\\.b": 1, "a\\": {"b": 2}, "empty": {}},
        backend="b",
        state=np.eye(2) / 2,
        renderers=[],
    )
    out = tmp_path / "x.csv"
    report = export_runs(archive, qa.RunFilter(), out)
    params = [c for c in report.columns if c.startswith("params.")]
    assert len(params) == len(set(params)) == 5
    (row,) = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert row[param_column(["mw.freq"])] == "5.1" and row[param_column(["mw", "freq"])] == "4.9"
    assert row[param_column(["a\\.b"])] == "1" and row[param_column(["a\\", "b"])] == "2"
    assert row["params.empty"] == "{}"
    assert param_column(["mw.freq"]) == "params.mw\\.freq"
    assert param_column(["mw", "freq"]) == "params.mw.freq"
    (record,) = archive.runs().records()
    assert record["params.mw\\.freq"] == 5.1 and record["params.mw.freq"] == 4.9


def test_to_pandas_has_the_same_columns(archive: qa.Archive) -> None:
    pytest.importorskip("pandas")
    archive.capture = False
    archive.record(
        "e",
        params={"mw.freq": 5.1, "mw": {"freq": 4.9}},
        backend="b",
        state=np.eye(2) / 2,
        renderers=[],
    )
    archive.record("e", params={"p": 1}, backend="b", state=np.eye(2) / 2, renderers=[])
    frame = archive.runs(newest_first=False).to_pandas()
    assert list(frame["params.mw\\.freq"].fillna(-1)) == [5.1, -1]
    assert list(frame["params.mw.freq"].fillna(-1)) == [4.9, -1]
    assert list(frame["params.p"].fillna(-1)) == [-1, 1]

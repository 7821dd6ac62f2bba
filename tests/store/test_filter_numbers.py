"""Filters compare numbers as numbers, however large."""

from __future__ import annotations

from pathlib import Path

import qex_archive as qa

from ..conftest import bell_state


def test_huge_integer_filters_compare_as_numbers(data_dir: Path) -> None:
    with qa.open_archive(data_dir) as arch:
        arch.record("e", params={"n": 10**20}, backend="b", state=bell_state())
        assert len(arch.runs(where={"n": {">=": 10**19}})) == 1
        assert arch.runs(where={"n": {">": 10**21}}) == []

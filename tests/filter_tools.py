"""A small archive that every filter can select from, and the runs `runs` lists for a filter:
shared by the tests that hold each selecting command to the same answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import qex_archive as qa
from qex_archive.store.annotations import tag_runs

from .cli_tools import invoke
from .conftest import bell_state


def fill(archive: qa.Archive) -> dict[str, str]:
    """Runs of three experiments on two backends, some tagged, one non-physical; by label."""
    ids = {}
    for shots in (1024, 2048, 4096):
        run = archive.record("ghz", params={"shots": shots}, backend="sim", state=bell_state())
        ids[f"ghz{shots}"] = run.run_id
    noisy = 0.7 * bell_state() + 0.3 / 4 * np.eye(4)
    ids["ghz-noisy"] = archive.record(
        "ghz", params={"shots": 1024}, backend="hw", state=noisy
    ).run_id
    for theta in (0.1, 1.5, 3.1):
        psi = np.array([np.cos(theta / 2), np.sin(theta / 2)])
        run = archive.record(
            "rabi", params={"theta": theta}, backend="hw", state=np.outer(psi, psi)
        )
        ids[f"rabi{theta}"] = run.run_id
    ids["tomo"] = archive.record(
        "tomo", params={"shots": 100}, backend="hw", state=np.diag([1.2, -0.2])
    ).run_id
    tag_runs(archive, [ids["ghz1024"], ids["ghz4096"], ids["rabi1.5"]], {"figure": "2"})
    tag_runs(archive, [ids["ghz2048"]], {"figure": "3"})
    tag_runs(archive, [ids["tomo"]], {"calibration": ""})
    return ids


def listed(data_dir: Path, *filters: str) -> list[str]:
    result = invoke(data_dir, "runs", "--all", "--json", *filters)
    assert result.exit_code == 0, result.output
    return sorted(run["run_id"] for run in json.loads(result.stdout))
